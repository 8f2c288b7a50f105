"""Training: the frozen split, and one MLflow-tracked candidate per model family of the spec."""

import tempfile
from pathlib import Path

import mlflow as mlflow_api
import pandas as pd
from dagster import AssetExecutionContext, AssetOut, MetadataValue, Output, asset, multi_asset

from aimass_pipeline.core.lineage import code_version
from aimass_pipeline.core.registry import ensure_experiment, run_url
from aimass_pipeline.core.scan import AnyTable, ScanTable, frame_of, path_of, rows_of, value_counts
from aimass_pipeline.core.splits import SELECTION_FRACTION, SELECTION_SALT
from aimass_pipeline.models import ENSEMBLE_TYPE, get_family
from aimass_pipeline.models.ensemble import SoftVotingEnsemble
from aimass_pipeline.orchestration.executor import TRAINING_OP_TAGS
from aimass_pipeline.orchestration.outages import retry_on_store_outage
from aimass_pipeline.orchestration.resources import MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase
from aimass_pipeline.training.compression import compress
from aimass_pipeline.training.scan_fit import FIT_PATH, fit_xgboost_scan
from aimass_pipeline.training.splits import holdout_mask, selection_split, split_frame, split_scan
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
    def split(table: AnyTable):
        """Rows go to the holdout by a hash of their key: a row never changes sides as new batches land.
        A scanned table is split in DuckDB by the same rule."""
        key, fraction = uc.contract.key, uc.spec.holdout_fraction
        if isinstance(table, ScanTable):
            sides = split_scan(table, key, Path(tempfile.mkdtemp(prefix="aimass-split-")), fraction)
            train, holdout = sides.train, sides.holdout
        else:
            train, holdout = split_frame(table, key, fraction=fraction)
        for name, frame in (("training_set", train), ("frozen_holdout", holdout)):
            yield Output(
                frame,
                output_name=name,
                metadata={
                    "dagster/row_count": rows_of(frame),
                    "read_path": path_of(table),
                    "class_counts": {
                        uc.contract.classes[int(k)]: v for k, v in value_counts(frame, LABEL).items()
                    },
                    "batches": sorted(str(b) for b in value_counts(frame, "batch_id")),
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
        context: AssetExecutionContext, training_set: AnyTable, tuned: dict, mlflow: MlflowResource
    ) -> dict:
        """Fit on the training set's fitting rows (the selection rows choose among the candidates) with the
        tuned parameters; compress where the spec's tolerance allows. Over training.max_rows rows XGBoost
        streams every fitting row; the other families fit on those of a seeded sample."""
        with retry_on_store_outage():
            family = get_family(family_name)
            key, features, n_classes = uc.contract.key, uc.contract.feature_names, len(uc.contract.classes)
            scanned = isinstance(training_set, ScanTable)
            frame = frame_of(training_set, uc.spec.training.max_rows, uc.spec.seed)
            fitting, _ = selection_split(frame, key)
            X = fitting[features]
            y = fitting[LABEL].to_numpy()
            estimator = family.build(uc.layout, n_classes, tuned["params"], uc.spec.seed)
            if scanned and family_name == "xgboost":
                estimator, train_rows = fit_xgboost_scan(
                    estimator,
                    training_set,
                    fitting,
                    features,
                    LABEL,
                    n_classes,
                    key=key,
                    keep=_fitting_rows(key),
                )
                fit_path = FIT_PATH
            else:
                estimator.fit(X, y)
                fit_path, train_rows = ("sample" if scanned else "frame"), len(fitting)
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
            batches = sorted(str(b) for b in value_counts(training_set, "batch_id"))
            metrics = {"train_rows": float(train_rows), "training_set_rows": float(rows_of(training_set))}
            if tuned.get("cv_score") is not None:
                metrics[f"cv_{uc.spec.metric}"] = float(tuned["cv_score"])
            if compression is not None:
                metrics.update(compression.as_metrics())
            # A scanned training set is logged by the sample's fitting rows.
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
                    "aimass.fit_path": fit_path,
                    "aimass.train_rows": str(train_rows),
                    "aimass.training_set_rows": str(rows_of(training_set)),
                },
            )
            context.add_output_metadata(
                {
                    "family": family_name,
                    "fit_path": fit_path,
                    "train_rows": train_rows,
                    "training_set_rows": rows_of(training_set),
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


def _fitting_rows(key: str):
    """The rows of a training-set batch that are not selection rows (``selection_split``'s rule)."""

    def keep(batch: pd.DataFrame):
        return ~holdout_mask(batch[key].astype(str), SELECTION_FRACTION, salt=SELECTION_SALT).to_numpy()

    return keep


def _serialization(family, compressed: bool) -> str:
    # A compressed variant wraps an ONNX session or a quantised module: skops cannot store either.
    return "cloudpickle" if compressed else family.serialization


def _ensemble_serialization(members) -> dict:
    """skops when every member is stored by skops itself; a compressed member (an ONNX head, a quantised
    torch module) is something skops cannot store, so that ensemble is cloudpickled (and signed)."""
    families = [get_family(m["family"]) for m in members]
    if any(m["compression_method"] != "none" for m in members) or any(
        f.serialization != "skops" for f in families
    ):
        return {"serialization": "cloudpickle"}
    trusted = {ENSEMBLE_TYPE, *(name for f in families for name in f.skops_trusted_types)}
    return {"serialization": "skops", "trusted_types": sorted(trusted)}


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
        context: AssetExecutionContext, training_set: AnyTable, mlflow: MlflowResource, **fitted
    ) -> dict:
        """The mean of every family's probabilities: often steadier than any one member, fitted on nothing new."""
        with retry_on_store_outage():
            names = [candidate["family"] for candidate in fitted.values()]
            model = SoftVotingEnsemble(members=[c["model"] for c in fitted.values()], names=names)
            sample = frame_of(training_set, uc.spec.training.max_rows, uc.spec.seed)
            fitting, _ = selection_split(sample, uc.contract.key)  # the rows its members were fitted on
            X = fitting[uc.contract.feature_names]
            client = mlflow.client()
            experiment_id = ensure_experiment(client, uc.name, mlflow.artifact_root)
            batches = sorted(str(b) for b in value_counts(training_set, "batch_id"))
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
                **_ensemble_serialization(fitted.values()),
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
