"""Evaluation: every candidate scored on the same frozen holdout, metrics back into its MLflow run."""

import base64

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, asset, asset_check

from aimass_pipeline.keys import upstream
from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.evaluation import roc_plot_png, score_binary
from aimass_pipeline.lib.training import features_and_target, predict_positive
from aimass_pipeline.resources import MlflowResource

USE_CASE = CREDIT_RISK.use_case
TARGET = "is_bad"
PRIMARY_METRIC = "roc_auc"
MIN_HOLDOUT_ROWS = 200


def _markdown_table(scores: dict[str, dict[str, float]]) -> str:
    names = ["roc_auc", "roc_auc_ci_low", "roc_auc_ci_high", "pr_auc", "brier", "log_loss", "accuracy", "f1"]
    lines = ["| candidate | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for family, metrics in scores.items():
        lines.append(f"| {family} | " + " | ".join(f"{metrics[n]:.4f}" for n in names) + " |")
    return "\n".join(lines)


@asset(
    key_prefix=USE_CASE,
    ins=upstream("logreg_candidate", "xgb_candidate", "frozen_holdout"),
    group_name="evaluation",
    kinds={"mlflow"},
)
def candidate_evaluation(
    context: AssetExecutionContext,
    logreg_candidate: dict,
    xgb_candidate: dict,
    frozen_holdout: pd.DataFrame,
    mlflow: MlflowResource,
) -> dict:
    """Holdout metrics per candidate and the best of them by ROC AUC."""
    features, target = features_and_target(frozen_holdout, CREDIT_RISK, TARGET)
    client = mlflow.client()
    scores: dict[str, dict[str, float]] = {}
    curves = {}
    for candidate in (logreg_candidate, xgb_candidate):
        proba = predict_positive(candidate["pipeline"], features)
        metrics = score_binary(target, proba)
        scores[candidate["family"]] = metrics
        curves[candidate["family"]] = (target, proba)
        for name, value in metrics.items():
            client.log_metric(candidate["run_id"], f"holdout_{name}", value)
    best = max((logreg_candidate, xgb_candidate), key=lambda c: scores[c["family"]][PRIMARY_METRIC])
    image = base64.b64encode(roc_plot_png(curves)).decode()
    context.add_output_metadata(
        {
            "holdout_rows": len(frozen_holdout),
            "best_family": best["family"],
            "best_roc_auc": scores[best["family"]][PRIMARY_METRIC],
            "metrics": MetadataValue.md(_markdown_table(scores)),
            "roc_curves": MetadataValue.md(f"![roc](data:image/png;base64,{image})"),
        }
    )
    return {
        "metric": PRIMARY_METRIC,
        "scores": scores,
        "best_family": best["family"],
        "best_run_id": best["run_id"],
        "best_model_uri": best["model_uri"],
        "holdout_rows": len(frozen_holdout),
    }


@asset_check(asset=candidate_evaluation, blocking=True, description="The holdout is large enough to judge on")
def check_candidate_evaluation_holdout_size(candidate_evaluation: dict) -> AssetCheckResult:
    rows = candidate_evaluation["holdout_rows"]
    return AssetCheckResult(
        passed=rows >= MIN_HOLDOUT_ROWS,
        metadata={"observed_rows": rows, "expected_min_rows": MIN_HOLDOUT_ROWS},
    )
