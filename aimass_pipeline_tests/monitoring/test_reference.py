"""champion_reference: a promoted version's training features and holdout predictions land in the lake under
its version, and the registry points at them; a rejected challenger leaves the champion's reference alone."""

import numpy as np
import pytest
from dagster import DagsterInstance, SourceAsset, materialize
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.signing import signed_pickle
from aimass_pipeline.monitoring.assets import REFERENCE_TAG, build_reference
from aimass_pipeline.monitoring.reference import MissingReferenceError, load_reference
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL
from aimass_pipeline_tests.monitoring.traffic import CLASSES, FEATURES, UC


def _run(settings, lake: Lake, training_set, evaluation: dict, champion: dict):
    lake.write_parquet(training_set, "assets", UC.name, "training_set.parquet")
    for name, value in (("candidate_evaluation", evaluation), ("champion_model", champion)):
        # Signed as the IO manager signs what it stores: it refuses an unsigned pickle.
        path = f"assets/{UC.name}/{name}.pkl"
        lake.write_bytes(signed_pickle(value, settings.signing_key(), path), *path.split("/"))
    resource = LakeResource(url=settings.lake_url)
    with DagsterInstance.get() as instance:
        result = materialize(
            [
                *build_reference(UC),
                *(SourceAsset(UC.key(n)) for n in ("training_set", "candidate_evaluation", "champion_model")),
            ],
            resources={
                "lake": resource,
                "mlflow": MlflowResource(
                    tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifacts_uri
                ),
                "io_manager": LakeIOManager(lake=resource),
            },
            instance=instance,
        )
    assert result.success
    return result.output_for_node(f"{UC.name}__champion_reference")


def test_promoted_version_gets_its_reference_and_a_rejected_one_does_not(home, credit_frame) -> None:
    settings, _ = home
    lake = Lake(settings.lake_url)
    training = credit_frame.head(300).assign(
        **{LABEL: (credit_frame["Status"].head(300) == "bad").astype(int)}
    )
    proba = np.tile([0.8, 0.2], (120, 1))
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    client.create_model_version(UC.name, "unused-source")

    promoted = _run(
        settings,
        lake,
        training,
        {"best_proba": proba},
        {"version": "2", "promoted": True, "champion_version": "2"},
    )

    assert promoted["written"] and promoted["version"] == "2"
    reference = load_reference(lake, UC.name, "2", CLASSES)
    assert list(reference.features.columns) == FEATURES and len(reference.features) == 300
    assert reference.proba.shape == (120, 2)
    assert client.get_model_version(UC.name, "2").tags[REFERENCE_TAG] == reference.features_uri

    client.create_model_version(UC.name, "unused-source")
    rejected = _run(
        settings,
        lake,
        training.head(50),
        {"best_proba": proba[:10]},
        {"version": "3", "promoted": False, "champion_version": "2"},
    )

    assert not rejected["written"] and rejected["version"] == "2"
    assert len(load_reference(lake, UC.name, "2", CLASSES).features) == 300
    with pytest.raises(MissingReferenceError, match="version 3 has no drift reference"):
        load_reference(lake, UC.name, "3", CLASSES)
