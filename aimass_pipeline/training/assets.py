"""Training: the frozen split, and one MLflow-tracked candidate per model family of the spec."""

import mlflow as mlflow_api
import pandas as pd
from dagster import AssetExecutionContext, AssetOut, MetadataValue, Output, asset, multi_asset

from aimass_pipeline.core.lineage import code_version
from aimass_pipeline.core.registry import ensure_experiment, run_url
from aimass_pipeline.models import get_family
from aimass_pipeline.models.ensemble import SoftVotingEnsemble
from aimass_pipeline.orchestration.executor import TRAINING_OP_TAGS
from aimass_pipeline.orchestration.outages import retry_on_store_outage
from aimass_pipeline.orchestration.resources import MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase
from aimass_pipeline.training.compression import compress
from aimass_pipeline.training.splits import selection_split, split_frame
from aimass_pipeline.training.tracking import log_candidate

COMPRESSION_SAMPLE = 1000


def build_training(uc: UseCase) -> list:
    members = [_candidate(uc, family) for family in uc.families]
    ensemble = [_ensemble(uc)] if "ensemble_candidate" in uc.candidates else []
    return [_split(uc), *members, *ensemble]


def _split(uc: UseCase):
    @multi_asset(
        name=f"{uc.name}__split",
        outs={
            "training_set": AssetOut(key_prefix=uc.name, group_name="training", kinds={"pandas"}),
            "frozen_holdout": AssetOut(key_prefix=uc.name, group_name="evaluation", kinds={"pandas"}),
        },
        ins={"table": uc.ins(uc.model_table)[uc.model_table]},
    )
    def split(table: pd.DataFrame):
        """Rows go to the holdout by a hash of their key: a row never changes sides as new batches land."""
        train, holdout = split_frame(table, uc.contract.key, fraction=uc.spec.holdout_fraction)
        for name, frame in (("training_set", train), ("frozen_holdout", holdout)):
            counts = frame[LABEL].value_counts().sort_index()
            yield Output(
                frame,
                output_name=name,
                metadata={
                    "dagster/row_count": len(frame),
                    "class_counts": {uc.contract.classes[int(k)]: int(v) for k, v in counts.items()},
                    "batches": sorted(frame["batch_id"].unique().tolist()),
                },
            )

    return split


def _candidate(uc: UseCase, family_name: str):
    params_name = f"{family_name}_params"

    @asset(
        name=f"{family_name}_candidate",
        key_prefix=uc.name,
        ins={
            "training_set": uc.ins("training_set")["training_set"],
            "tuned": uc.ins(params_name)[params_name],
        },
        group_name="training",
        kinds={"mlflow", family_name.split("_")[0]},
        op_tags=TRAINING_OP_TAGS,  # its own Celery queue (orchestration/executor.py)
    )
    def candidate(
        context: AssetExecutionContext, training_set: pd.DataFrame, tuned: dict, mlflow: MlflowResource
    ) -> dict:
        """Fit on the training set's fitting rows (the selection rows choose among the candidates) with the
        tuned parameters; compress where the spec's tolerance allows."""
        with retry_on_store_outage():
            family = get_family(family_name)
            fitting, _ = selection_split(training_set, uc.contract.key)
            X = fitting[uc.contract.feature_names]
            y = fitting[LABEL].to_numpy()
            estimator = family.build(uc.layout, len(uc.contract.classes), tuned["params"], uc.spec.seed)
            estimator.fit(X, y)
            compression = None
            served = estimator
            if uc.spec.compression.enabled:
                sample = fitting.sample(n=min(COMPRESSION_SAMPLE, len(fitting)), random_state=uc.spec.seed)
                compression = compress(
                    estimator,
                    sample[uc.contract.feature_names],
                    sample[LABEL].to_numpy(),
                    metric=uc.spec.metric,
                    tolerance=uc.spec.compression.tolerance,
                    seed=uc.spec.seed,
                )
                if compression.kept:
                    served = compression.compressed
            client = mlflow.client()
            experiment_id = ensure_experiment(client, uc.name, mlflow.artifact_root)
            batches = sorted(training_set["batch_id"].unique().tolist())
            metrics = {"train_rows": float(len(fitting))}
            if tuned.get("cv_score") is not None:
                metrics[f"cv_{uc.spec.metric}"] = float(tuned["cv_score"])
            if compression is not None:
                metrics.update(compression.as_metrics())
            dataset = mlflow_api.data.from_pandas(fitting, name=f"{uc.name}_training_set", targets=LABEL)
            run_id, model_uri = log_candidate(
                experiment_id=experiment_id,
                run_name=f"{family_name}-{context.run_id[:8]}",
                model=served,
                params={**tuned["params"], "family": family_name, "seed": uc.spec.seed},
                metrics=metrics,
                example=X.head(20),
                dataset=dataset,
                serialization=_serialization(family, served is not estimator),
                trusted_types=family.skops_trusted_types,
                code_version=code_version(),
                signing_key=mlflow.signing_key_value(),
                tags={
                    "aimass.use_case": uc.name,
                    "aimass.family": family_name,
                    "aimass.compression": compression.method if compression and compression.kept else "none",
                    "dagster.run_id": context.run_id,
                    "aimass.data_batches": ",".join(batches),
                },
            )
            context.add_output_metadata(
                {
                    "family": family_name,
                    "train_rows": len(fitting),
                    "params": MetadataValue.json(tuned["params"]),
                    "compression": compression.reason if compression else "disabled in the spec",
                    **({k: float(v) for k, v in compression.as_metrics().items()} if compression else {}),
                    "mlflow_run_id": run_id,
                    "mlflow_run": MetadataValue.url(
                        run_url(mlflow.tracking_uri, experiment_id, run_id, mlflow.ui_url)
                    ),
                    "model_uri": model_uri,
                }
            )
            return {
                "family": family_name,
                "model": served,
                "run_id": run_id,
                "experiment_id": experiment_id,
                "model_uri": model_uri,
                "params": tuned["params"],
                "compression": compression.as_metrics() if compression else None,
                "compression_method": compression.method if compression and compression.kept else "none",
            }

    return candidate


def _serialization(family, compressed: bool) -> str:
    # A compressed variant wraps an ONNX session or a quantised module: skops cannot store either.
    return "cloudpickle" if compressed else family.serialization


def _ensemble(uc: UseCase):
    members = [f"{family}_candidate" for family in uc.families]

    @asset(
        name="ensemble_candidate",
        key_prefix=uc.name,
        ins=uc.ins("training_set", *members),
        group_name="training",
        kinds={"mlflow", "scikitlearn"},
        op_tags=TRAINING_OP_TAGS,
    )
    def ensemble(
        context: AssetExecutionContext, training_set: pd.DataFrame, mlflow: MlflowResource, **fitted
    ) -> dict:
        """The mean of every family's probabilities: often steadier than any one member, fitted on nothing new."""
        with retry_on_store_outage():
            names = [candidate["family"] for candidate in fitted.values()]
            model = SoftVotingEnsemble(members=[c["model"] for c in fitted.values()], names=names)
            fitting, _ = selection_split(training_set, uc.contract.key)  # the rows its members were fitted on
            X = fitting[uc.contract.feature_names]
            client = mlflow.client()
            experiment_id = ensure_experiment(client, uc.name, mlflow.artifact_root)
            batches = sorted(training_set["batch_id"].unique().tolist())
            run_id, model_uri = log_candidate(
                experiment_id=experiment_id,
                run_name=f"ensemble-{context.run_id[:8]}",
                model=model,
                params={
                    "members": ",".join(names),
                    "member_runs": ",".join(c["run_id"] for c in fitted.values()),
                },
                metrics={"train_rows": float(len(fitting)), "members": float(len(names))},
                example=X.head(20),
                dataset=mlflow_api.data.from_pandas(fitting, name=f"{uc.name}_training_set", targets=LABEL),
                # Members may be ONNX heads or quantised torch modules, which skops cannot store.
                serialization="cloudpickle",
                code_version=code_version(),
                signing_key=mlflow.signing_key_value(),
                tags={
                    "aimass.use_case": uc.name,
                    "aimass.family": "ensemble",
                    "dagster.run_id": context.run_id,
                    "aimass.data_batches": ",".join(batches),
                },
            )
            context.add_output_metadata(
                {
                    "members": names,
                    "mlflow_run_id": run_id,
                    "mlflow_run": MetadataValue.url(
                        run_url(mlflow.tracking_uri, experiment_id, run_id, mlflow.ui_url)
                    ),
                }
            )
            return {
                "family": "ensemble",
                "model": model,
                "run_id": run_id,
                "experiment_id": experiment_id,
                "model_uri": model_uri,
                "params": {"members": names},
                "compression": None,
                "compression_method": "none",
            }

    return ensemble
