"""Evaluation: every candidate scored on the same frozen holdout, metrics back into its MLflow run."""

import base64

import numpy as np
import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, asset, asset_check

from aimass_pipeline.lib.evaluation import latency_ms, roc_plot_png, score_all
from aimass_pipeline.resources import MlflowResource
from aimass_pipeline.use_case import LABEL, UseCase


def _markdown_table(scores: dict[str, dict[str, float]]) -> str:
    names = sorted({n for metrics in scores.values() for n in metrics if n != "rows"})
    lines = ["| candidate | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for family, metrics in scores.items():
        lines.append(
            f"| {family} | " + " | ".join(f"{metrics.get(n, float('nan')):.4f}" for n in names) + " |"
        )
    return "\n".join(lines)


def build_evaluation(uc: UseCase) -> list:
    candidates = uc.candidates
    metric = uc.spec.metric

    @asset(
        name="candidate_evaluation",
        key_prefix=uc.name,
        ins=uc.ins(*candidates, "frozen_holdout"),
        group_name="evaluation",
        kinds={"mlflow"},
    )
    def evaluation(
        context: AssetExecutionContext, frozen_holdout: pd.DataFrame, mlflow: MlflowResource, **fitted
    ):
        """Holdout metrics and latency per candidate, and the best of them by the spec's primary metric."""
        X = frozen_holdout[uc.contract.feature_names]
        y = frozen_holdout[LABEL].to_numpy()
        client = mlflow.client()
        scores: dict[str, dict[str, float]] = {}
        probas: dict[str, np.ndarray] = {}
        for candidate in fitted.values():
            # Each model timed on its own, as a server holding only it would run: interleaving five
            # different runtimes (torch, onnxruntime, xgboost...) thrashes caches and inflates every figure.
            [(single_ms, batch_ms)] = latency_ms([candidate["model"]], X, seed=uc.spec.seed)
            proba = candidate["model"].predict_proba(X)
            metrics = {
                **score_all(len(uc.contract.classes), y, proba, seed=uc.spec.seed),
                "latency_ms_single_row": single_ms,
                "latency_ms_per_row_batch": batch_ms,
            }
            scores[candidate["family"]] = metrics
            probas[candidate["family"]] = proba
            for name, value in metrics.items():
                client.log_metric(candidate["run_id"], f"holdout_{name}", value)
        best = max(fitted.values(), key=lambda c: scores[c["family"]][metric])
        metadata = {
            "holdout_rows": len(frozen_holdout),
            "best_family": best["family"],
            f"best_{metric}": scores[best["family"]][metric],
            "metrics": MetadataValue.md(_markdown_table(scores)),
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
            "holdout_rows": len(frozen_holdout),
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
