"""Training: the training side of the frozen split, and one MLflow-tracked candidate per model family."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetOut,
    AssetsDefinition,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from aimass_pipeline.keys import upstream
from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.registry import ensure_experiment, log_candidate, run_url
from aimass_pipeline.lib.splits import split_frame
from aimass_pipeline.lib.training import features_and_target, fit_candidate
from aimass_pipeline.resources import MlflowResource

USE_CASE = CREDIT_RISK.use_case
TARGET = "is_bad"
SEED = 42


@multi_asset(
    outs={
        "training_set": AssetOut(key_prefix=USE_CASE, group_name="training", kinds={"pandas"}),
        "frozen_holdout": AssetOut(key_prefix=USE_CASE, group_name="evaluation", kinds={"pandas"}),
    },
    ins=upstream(warehouse=("credit_features",)),
)
def split_credit_features(credit_features: pd.DataFrame):
    """Rows go to the holdout by a hash of their key: a row never changes sides as new batches land."""
    train, holdout = split_frame(credit_features, CREDIT_RISK.key, fraction=0.2)
    for name, frame in (("training_set", train), ("frozen_holdout", holdout)):
        yield Output(
            frame,
            output_name=name,
            metadata={
                "dagster/row_count": len(frame),
                "positive_rate": float(frame[TARGET].mean()),
                "batches": sorted(frame["batch_id"].unique().tolist()),
            },
        )


def candidate_asset(family: str, asset_name: str) -> AssetsDefinition:
    @asset(
        name=asset_name,
        key_prefix=USE_CASE,
        ins=upstream("training_set"),
        group_name="training",
        kinds={"mlflow", "scikitlearn"},
    )
    def _candidate(
        context: AssetExecutionContext, training_set: pd.DataFrame, mlflow: MlflowResource
    ) -> dict:
        fitted = fit_candidate(family, training_set, CREDIT_RISK, TARGET, seed=SEED)
        client = mlflow.client()
        experiment_id = ensure_experiment(client, USE_CASE, mlflow.artifact_root)
        features, _ = features_and_target(training_set, CREDIT_RISK, TARGET)
        batches = sorted(training_set["batch_id"].unique().tolist())
        run_id, model_uri = log_candidate(
            experiment_id=experiment_id,
            run_name=f"{asset_name}-{context.run_id[:8]}",
            pipeline=fitted.pipeline,
            params={**fitted.params, "family": family, "seed": SEED, "train_rows": fitted.train_rows},
            metrics={"cv_roc_auc_mean": fitted.cv_roc_auc_mean, "cv_roc_auc_std": fitted.cv_roc_auc_std},
            example=features.head(20),
            tags={
                "aimass.use_case": USE_CASE,
                "aimass.family": family,
                "dagster.run_id": context.run_id,
                "aimass.data_batches": ",".join(batches),
            },
        )
        link = run_url(mlflow.tracking_uri, experiment_id, run_id, mlflow.ui_url)
        context.add_output_metadata(
            {
                "family": family,
                "cv_roc_auc_mean": fitted.cv_roc_auc_mean,
                "cv_roc_auc_std": fitted.cv_roc_auc_std,
                "train_rows": fitted.train_rows,
                "mlflow_run_id": run_id,
                "mlflow_run": MetadataValue.url(link),
                "model_uri": model_uri,
            }
        )
        return {
            "family": family,
            "pipeline": fitted.pipeline,
            "run_id": run_id,
            "experiment_id": experiment_id,
            "model_uri": model_uri,
            "cv_roc_auc_mean": fitted.cv_roc_auc_mean,
        }

    return _candidate


logreg_candidate = candidate_asset("logreg", "logreg_candidate")
xgb_candidate = candidate_asset("xgboost", "xgb_candidate")
