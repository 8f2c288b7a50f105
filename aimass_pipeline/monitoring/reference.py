"""The drift reference of each promoted version, written by the lifecycle run that promoted it."""

import pandas as pd
from dagster import AssetExecutionContext, asset

from aimass_pipeline.lib.drift_reference import save_reference
from aimass_pipeline.resources import LakeResource, MlflowResource
from aimass_pipeline.use_case import UseCase

REFERENCE_TAG = "aimass.drift_reference"


def build_reference(uc: UseCase) -> list:
    # Group "registration", not "monitoring": it belongs to the run that trains and promotes (lifecycle and
    # retrain jobs), where the training set in hand is the one the new champion was fitted on.
    @asset(
        name="champion_reference",
        key_prefix=uc.name,
        ins=uc.ins("training_set", "candidate_evaluation", "champion_model"),
        group_name="registration",
        kinds={"pandas"},
    )
    def champion_reference(
        context: AssetExecutionContext,
        training_set: pd.DataFrame,
        candidate_evaluation: dict,
        champion_model: dict,
        lake: LakeResource,
        mlflow: MlflowResource,
    ) -> dict:
        """What drift is measured against: the promoted version's training features and holdout predictions."""
        champion = champion_model["champion_version"]
        if not champion_model["promoted"]:
            context.add_output_metadata(
                {
                    "written": False,
                    "champion_version": str(champion),
                    "reason": f"version {champion_model['version']} was not promoted; the champion's "
                    f"reference (version {champion}) stays",
                }
            )
            return {"version": champion, "written": False}
        version = str(champion_model["version"])
        reference = save_reference(
            lake.lake(),
            uc.name,
            version,
            training_set[uc.contract.feature_names],
            candidate_evaluation["best_proba"],
            list(uc.contract.classes),
            uc.spec.seed,
        )
        mlflow.client().set_model_version_tag(uc.name, version, REFERENCE_TAG, reference.features_uri)
        context.add_output_metadata(
            {
                "written": True,
                "champion_version": version,
                "dagster/row_count": len(reference.features),
                "holdout_predictions": len(reference.proba),
                "features_uri": reference.features_uri,
                "predictions_uri": reference.predictions_uri,
            }
        )
        return {"version": version, "written": True, "features_uri": reference.features_uri}

    return [champion_reference]
