"""champion_reference: every registered version's training features and holdout predictions land in the lake
under its version, and the registry points at them; a rejected challenger leaves the champion's reference alone
and gets its own, so that an operator can promote it and still have it monitored."""

import mlflow
import numpy as np
import pytest
from dagster import DagsterInstance, SourceAsset, materialize
from mlflow.tracking import MlflowClient

from aimass_pipeline.cli.main import main
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.lineage import code_version
from aimass_pipeline.core.registry import ensure_experiment, register_version
from aimass_pipeline.core.signing import signed_pickle
from aimass_pipeline.models import get_family
from aimass_pipeline.monitoring.assets import REFERENCE_TAG, build_reference
from aimass_pipeline.monitoring.reference import MissingReferenceError, load_reference
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL
from aimass_pipeline.training.tracking import log_candidate
from aimass_pipeline_tests.conftest import CREDIT_RISK
from aimass_pipeline_tests.monitoring.test_monitoring_assets import _materialize
from aimass_pipeline_tests.monitoring.traffic import CLASSES, FEATURES, SERVED, UC, serve


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


def test_every_registered_version_gets_its_own_reference(home, credit_frame) -> None:
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

    # The rejected version gets its own reference (an operator may promote it); the champion's stays.
    assert rejected["written"] and rejected["version"] == "3" and rejected["champion_version"] == "2"
    assert len(load_reference(lake, UC.name, "2", CLASSES).features) == 300
    assert len(load_reference(lake, UC.name, "3", CLASSES).features) == 50
    with pytest.raises(MissingReferenceError, match="version 4 has no drift reference.*aimass promote"):
        load_reference(lake, UC.name, "4", CLASSES)


def test_a_refused_version_promoted_by_hand_is_monitored(home, credit_frame) -> None:
    """The gate refuses version 2; an operator promotes it anyway (`aimass promote`); monitoring then judges
    the traffic of version 2 against version 2's own reference."""
    settings, unseen = home
    lake = Lake(settings.lake_url)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    training = credit_frame.head(600).assign(
        **{LABEL: CREDIT_RISK.encode_target(credit_frame["Status"].head(600))}
    )
    family = get_family("logreg")
    model = family.build(UC.layout, 2, {}, 42).fit(training[FEATURES], training[LABEL])
    run_id, model_uri = log_candidate(
        experiment_id=ensure_experiment(client, UC.name, settings.mlflow_artifacts_uri),
        run_name="refused",
        model=model,
        params={},
        metrics={},
        example=training[FEATURES].head(5),
        tags={"aimass.use_case": UC.name},
        code_version=code_version(),
        trusted_types=family.skops_trusted_types,
        signing_key=settings.signing_key(),
    )
    version = register_version(client, UC.name, model_uri, run_id, {"gate.promote": "false"}, "refused")
    assert str(version.version) == "2"
    refused = _run(
        settings,
        lake,
        training,
        {"best_proba": model.predict_proba(unseen[FEATURES].head(200))},
        {"version": "2", "promoted": False, "champion_version": "1"},
    )
    assert main(["promote", UC.name, "2"]) == 0
    serve(settings, unseen.iloc[:SERVED], "2")
    with DagsterInstance.get() as instance:
        outputs, metadata = _materialize(settings, instance)
    assert outputs["feature_drift"]["champion_version"] == "2", outputs["feature_drift"]
    assert "/reference/v2/" in metadata["feature_drift"]["reference_uri"].value
    assert outputs["prediction_drift"]["champion_version"] == "2"
    assert refused["version"] == "2" and refused["written"] and refused["champion_version"] == "1"
