"""Registration: the best candidate becomes a registry version; ``champion`` moves only through the gate."""

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, asset, asset_check

from aimass_pipeline.keys import upstream
from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.evaluation import score_binary
from aimass_pipeline.lib.gate import decide
from aimass_pipeline.lib.registry import champion_version, load_model, promote, register_version, run_url
from aimass_pipeline.lib.training import features_and_target, predict_positive
from aimass_pipeline.resources import MlflowResource

USE_CASE = CREDIT_RISK.use_case
TARGET = "is_bad"
FLOOR = 0.75
MIN_DELTA = 0.0


@asset(
    key_prefix=USE_CASE,
    ins=upstream("candidate_evaluation", "frozen_holdout"),
    group_name="registration",
    kinds={"mlflow"},
)
def champion_model(
    context: AssetExecutionContext,
    candidate_evaluation: dict,
    frozen_holdout: pd.DataFrame,
    mlflow: MlflowResource,
) -> dict:
    """Registers the best candidate; the current champion is re-scored on this same holdout for the gate."""
    client = mlflow.client()
    metric = candidate_evaluation["metric"]
    challenger = candidate_evaluation["scores"][candidate_evaluation["best_family"]]
    current = champion_version(client, USE_CASE)
    champion_score = None
    if current is not None:
        features, target = features_and_target(frozen_holdout, CREDIT_RISK, TARGET)
        proba = predict_positive(load_model(f"models:/{USE_CASE}/{current.version}"), features)
        champion_score = score_binary(target, proba)[metric]
    decision = decide(challenger[metric], champion_score, metric=metric, floor=FLOOR, min_delta=MIN_DELTA)
    tags = {
        "aimass.family": candidate_evaluation["best_family"],
        "dagster.run_id": context.run_id,
        "gate.promoted": str(decision.promote).lower(),
        "gate.reason": decision.reason,
        **{f"holdout.{k}": f"{v:.6f}" for k, v in challenger.items()},
    }
    version = register_version(
        client,
        USE_CASE,
        candidate_evaluation["best_model_uri"],
        candidate_evaluation["best_run_id"],
        tags,
        description=CREDIT_RISK.description,
    )
    client.set_tag(candidate_evaluation["best_run_id"], "gate.promoted", str(decision.promote).lower())
    former = promote(client, USE_CASE, version.version) if decision.promote else None
    champion = champion_version(client, USE_CASE)
    experiment_id = client.get_run(candidate_evaluation["best_run_id"]).info.experiment_id
    context.add_output_metadata(
        {
            "registered_model": USE_CASE,
            "version": int(version.version),
            "promoted": decision.promote,
            "gate_reason": decision.reason,
            "challenger_roc_auc": challenger[metric],
            "champion_roc_auc_before": champion_score if champion_score is not None else MetadataValue.null(),
            "champion_version": int(champion.version) if champion else MetadataValue.null(),
            "previous_champion_version": int(former) if former else MetadataValue.null(),
            "mlflow_run": MetadataValue.url(
                run_url(
                    mlflow.tracking_uri, experiment_id, candidate_evaluation["best_run_id"], mlflow.ui_url
                )
            ),
        }
    )
    return {
        "registered_model": USE_CASE,
        "version": version.version,
        "promoted": decision.promote,
        "decision": decision.as_dict(),
        "champion_version": champion.version if champion else None,
    }


@asset_check(asset=champion_model, blocking=True, description="A champion exists after the gate")
def check_champion_model_exists(champion_model: dict) -> AssetCheckResult:
    return AssetCheckResult(
        passed=champion_model["champion_version"] is not None,
        metadata={
            "champion_version": str(champion_model["champion_version"]),
            "gate_decision": MetadataValue.json(champion_model["decision"]),
        },
    )
