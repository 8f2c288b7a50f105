"""Evaluation and promotion: every candidate scored on the training set's selection rows and on the frozen
holdout (metrics back into its MLflow run); the best on the selection rows registered, and ``champion`` moved
only through the gate, which alone judges on the holdout."""

import base64

import numpy as np
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, asset, asset_check

from aimass_pipeline.core import audit
from aimass_pipeline.core.latency import latency_ms, single_row_latency
from aimass_pipeline.core.lineage import code_version
from aimass_pipeline.core.registry import (
    champion_version,
    previous_version,
    promote,
    register_version,
    registered_from,
    run_url,
)
from aimass_pipeline.core.scan import AnyTable, frame_of, rows_of, sample_metadata, value_counts
from aimass_pipeline.core.scoring import holdout_metrics
from aimass_pipeline.core.splits import selection_split
from aimass_pipeline.core.version_contract import contract_tags
from aimass_pipeline.evaluation.contract_gate import judge
from aimass_pipeline.evaluation.model_card import markdown_table, render_model_card, sampling_note
from aimass_pipeline.evaluation.plots import roc_plot_png
from aimass_pipeline.evaluation.selection import choose, selection_scores
from aimass_pipeline.evaluation.served_variant import served_variant
from aimass_pipeline.orchestration.outages import retry_on_store_outage
from aimass_pipeline.orchestration.resources import LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase


def build_evaluation(uc: UseCase) -> list:
    candidates = uc.candidates
    metric = uc.spec.metric

    @asset(
        name="candidate_evaluation",
        key_prefix=uc.name,
        ins=uc.ins(*candidates, "training_set", "frozen_holdout"),
        group_name="evaluation",
        kinds={"mlflow"},
    )
    def evaluation(
        context: AssetExecutionContext,
        training_set: AnyTable,
        frozen_holdout: AnyTable,
        mlflow: MlflowResource,
        **fitted,
    ):
        """Holdout metrics and latency per candidate, and the best of them by the spec's primary metric on the
        selection rows: chosen on the holdout, the gate's test on it would promote more often than alpha."""
        # Over training.max_rows rows: the selection rows of the training sample the candidates were fitted
        # on, and a seeded holdout sample of that size, the same rows for every candidate and for the gate.
        max_rows, seed = uc.spec.training.max_rows, uc.spec.seed
        with retry_on_store_outage():
            _, selection = selection_split(frame_of(training_set, max_rows, seed), uc.contract.key)
            holdout = frame_of(frozen_holdout, max_rows, seed)
            chosen_on = selection_scores(
                metric,
                selection[LABEL].to_numpy(),
                {
                    c["family"]: c["model"].predict_proba(selection[uc.contract.feature_names])
                    for c in fitted.values()
                },
            )
            X = holdout[uc.contract.feature_names]
            y = holdout[LABEL].to_numpy()
            client = mlflow.client()
            scores: dict[str, dict[str, float]] = {}
            probas: dict[str, np.ndarray] = {}
            for candidate in fitted.values():
                # Each model timed on its own, as a server holding only it would run: interleaving five
                # different runtimes (torch, onnxruntime, xgboost...) thrashes caches and inflates every figure.
                # Timed as it will be served: compiled into one graph when that agrees on the whole holdout.
                served, compiled = served_variant(candidate["model"], X, context.log)
                [(_, batch_ms)] = latency_ms([served], X, seed=uc.spec.seed)
                proba = candidate["model"].predict_proba(X)
                metrics = {
                    **holdout_metrics(y, proba, seed=uc.spec.seed),
                    **single_row_latency(served, X, seed=uc.spec.seed).as_metrics(),
                    "latency_ms_per_row_batch": batch_ms,
                    **compiled,
                }
                scores[candidate["family"]] = metrics
                probas[candidate["family"]] = proba
                for name, value in metrics.items():
                    client.log_metric(candidate["run_id"], f"holdout_{name}", value)
                client.log_metric(candidate["run_id"], f"selection_{metric}", chosen_on[candidate["family"]])
            best_family = choose(metric, chosen_on)
            [best] = [c for c in fitted.values() if c["family"] == best_family]
            metadata = {
                **sample_metadata(frozen_holdout, max_rows),
                "holdout_rows": len(holdout),
                "selection_rows": len(selection),
                f"selection_{metric}": MetadataValue.json(chosen_on),
                "best_family": best["family"],
                f"best_{metric}": scores[best["family"]][metric],
                "metrics": MetadataValue.md(markdown_table(scores)),
            }
            if len(uc.contract.classes) == 2:
                png = roc_plot_png({family: (y, proba[:, 1]) for family, proba in probas.items()})
                metadata["roc_curves"] = MetadataValue.md(
                    f"![roc](data:image/png;base64,{base64.b64encode(png).decode()})"
                )
            context.add_output_metadata(metadata)
            return {
                "metric": metric,
                "scores": scores,
                "best_family": best["family"],
                "best_run_id": best["run_id"],
                "best_model_uri": best["model_uri"],
                "best_proba": probas[best["family"]],
                "best_params": best["params"],
                "best_compression": best["compression"],
                "best_compression_method": best["compression_method"],
                "holdout_rows": len(holdout),
                "holdout_table_rows": rows_of(frozen_holdout),
                "selection_scores": chosen_on,
            }

    @asset_check(
        asset=evaluation,
        name="check_candidate_evaluation_holdout_size",
        blocking=True,
        description="The holdout is large enough to judge a promotion on",
    )
    def holdout_size(evaluation: dict) -> AssetCheckResult:
        rows, needed = evaluation["holdout_rows"], uc.spec.gate.min_holdout_rows
        return AssetCheckResult(
            passed=rows >= needed, metadata={"observed_rows": rows, "expected_min_rows": needed}
        )

    return [evaluation, holdout_size]


def build_registration(uc: UseCase) -> list:
    @asset(
        name="champion_model",
        key_prefix=uc.name,
        ins=uc.ins("candidate_evaluation", "frozen_holdout"),
        group_name="registration",
        kinds={"mlflow"},
    )
    def champion_model(
        context: AssetExecutionContext,
        candidate_evaluation: dict,
        frozen_holdout: AnyTable,
        mlflow: MlflowResource,
        lake: LakeResource,
    ) -> dict:
        """Registers the best candidate; the gate compares it with the current champion on the same holdout."""
        with retry_on_store_outage():
            client = mlflow.client()
            # The rows candidate_evaluation scored (the same seeded sample when the holdout is scanned).
            holdout = frame_of(frozen_holdout, uc.spec.training.max_rows, uc.spec.seed)
            metric = candidate_evaluation["metric"]
            family = candidate_evaluation["best_family"]
            challenger = candidate_evaluation["scores"][family]
            run_id = candidate_evaluation["best_run_id"]
            # A retried run (the database went away half-way) must not register the same candidate twice: its
            # MLflow run identifies it. If the first attempt already promoted it, the gate judges it again against
            # the champion it replaced, which gives the same decision.
            registered = registered_from(client, uc.name, run_id)
            current = champion_version(client, uc.name)
            if (
                registered is not None
                and current is not None
                and str(current.version) == str(registered.version)
            ):
                current = previous_version(client, uc.name)
            gate = uc.spec.gate
            decision = judge(
                use_case=uc.name,
                contract=uc.contract,
                champion=current,
                holdout=holdout,
                metric=metric,
                y_true=holdout[LABEL].to_numpy(),
                challenger_proba=candidate_evaluation["best_proba"],
                floor=gate.floor,
                min_delta=gate.min_delta,
                alpha=gate.alpha,
                challenger_latency_ms=challenger["latency_ms_single_row"],
                challenger_latency_spread_ms=(
                    challenger.get("latency_ms_single_row_p10"),
                    challenger.get("latency_ms_single_row_p90"),
                ),
                max_latency_ms=gate.max_latency_ms,
                seed=uc.spec.seed,
                load=mlflow.load_model,
            )
            batches = sorted(str(b) for b in value_counts(frozen_holdout, "batch_id"))
            tags = {
                "aimass.family": family,
                "aimass.primary_metric": metric,
                "dagster.run_id": context.run_id,
                **decision.as_tags(),
                **{f"holdout.{k}": f"{v:.6f}" for k, v in challenger.items()},
                # What the version was trained under, for the gate and the service.
                **contract_tags(uc.contract),
            }
            version = registered or register_version(
                client, uc.name, candidate_evaluation["best_model_uri"], run_id, tags, uc.spec.description
            )
            interval = (challenger.get(f"{metric}_ci_low"), challenger.get(f"{metric}_ci_high"))
            run_tags = client.get_run(run_id).data.tags
            card = render_model_card(
                use_case=uc.name,
                description=uc.spec.description,
                version=version.version,
                family=family,
                params=candidate_evaluation["best_params"],
                data={
                    "rows": int(float(run_tags.get("aimass.train_rows", "0"))) or None,
                    "sampling": sampling_note(run_tags, len(holdout), rows_of(frozen_holdout)),
                    "holdout_rows": len(holdout),
                    "batches": batches,
                    "classes": list(uc.contract.classes),
                },
                metrics=challenger,
                intervals={metric: interval} if None not in interval else {},
                gate=decision.as_dict(),
                compression=candidate_evaluation["best_compression"],
                lineage={
                    "dagster_run_id": context.run_id,
                    "mlflow_run_id": run_id,
                    "code_version": code_version(),
                    "data_batches": ",".join(batches),
                },
            )
            client.log_text(run_id, card, f"model_card_v{version.version}.md")
            client.update_model_version(uc.name, version.version, description=card)
            for key, value in decision.as_tags().items():
                client.set_tag(run_id, key, value)
            # Compare-and-set on the champion this decision was made against: if an operator (or another gate)
            # moved it meanwhile, this later decision loses (PromotionConflict names both versions).
            expected = str(current.version) if current is not None else None
            former = (
                promote(client, uc.name, str(version.version), expected=expected, log=context.log.warning)
                if decision.promote
                else None
            )
            champion = champion_version(client, uc.name)
            evidence = {"version": str(version.version), "replaced": expected, "dagster_run": context.run_id}
            lake.record_audit(audit.GATE, uc.name, evidence | decision.as_dict(), who="gate")
            context.add_output_metadata(
                {
                    "registered_model": uc.name,
                    "version": int(version.version),
                    "promoted": decision.promote,
                    "gate_reason": decision.reason,
                    f"challenger_{metric}": challenger[metric],
                    "champion_version": int(champion.version) if champion else MetadataValue.null(),
                    "previous_champion_version": int(former) if former else MetadataValue.null(),
                    "gate": MetadataValue.json({k: v for k, v in decision.as_dict().items()}),
                    "model_card": MetadataValue.md(card),
                    "mlflow_run": MetadataValue.url(
                        run_url(
                            mlflow.tracking_uri,
                            client.get_run(run_id).info.experiment_id,
                            run_id,
                            mlflow.ui_url,
                        )
                    ),
                }
            )
            return {
                "registered_model": uc.name,
                "version": str(version.version),
                "promoted": decision.promote,
                "decision": decision.as_dict(),
                "champion_version": str(champion.version) if champion else None,
            }

    @asset_check(
        asset=champion_model,
        name="check_champion_model_exists",
        blocking=True,
        description="A champion exists after the gate",
    )
    def champion_exists(champion_model: dict) -> AssetCheckResult:
        return AssetCheckResult(
            passed=champion_model["champion_version"] is not None,
            metadata={
                "champion_version": str(champion_model["champion_version"]),
                "gate_decision": MetadataValue.json(champion_model["decision"]),
            },
        )

    return [champion_model, champion_exists]
