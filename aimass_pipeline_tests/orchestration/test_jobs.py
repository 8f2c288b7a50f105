from pathlib import Path

from dagster import Definitions, asset

from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.orchestration.jobs import build_lifecycle_job, build_retrain_job
from aimass_pipeline.orchestration.resources import LakeResource, LandingZoneResource
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline_tests.conftest import CREDIT_SPEC

CREDIT = UseCase(CREDIT_SPEC)


@asset(key_prefix="credit_risk", group_name="monitoring")
def live_drift() -> int:
    return 0


@asset(key_prefix="other", group_name="collection")
def other_table() -> int:
    return 0


def _steps(defs: Definitions, name: str) -> set[str]:
    return set(defs.resolve_job_def(name).graph.node_dict)


def test_lifecycle_takes_a_batch_and_retrain_only_the_raw_zone_neither_monitoring(tmp_path: Path) -> None:
    defs = Definitions(
        assets=[*build_collection(CREDIT), live_drift, other_table],
        jobs=[build_lifecycle_job(CREDIT), build_retrain_job(CREDIT)],
        resources={
            "landing": LandingZoneResource(root=str(tmp_path / "landing")),
            "lake": LakeResource(url=str(tmp_path / "lake")),
        },
    )
    lifecycle = defs.resolve_job_def("credit_risk_lifecycle")
    assert lifecycle.partitions_def == CREDIT.batches
    assert {"credit_risk__raw_applications_batch", "credit_risk__raw_applications"} <= _steps(
        defs, "credit_risk_lifecycle"
    )
    retrain = _steps(defs, "credit_risk_retrain")
    assert "credit_risk__raw_applications" in retrain and "credit_risk__raw_applications_batch" not in retrain
    for steps in (_steps(defs, "credit_risk_lifecycle"), retrain):
        assert not any("live_drift" in s or "other_table" in s for s in steps)


def test_the_retrain_job_runs_no_batch_partitioned_asset() -> None:
    from aimass_pipeline.core.specs import load_specs
    from aimass_pipeline.definitions import build_definitions

    defs = build_definitions(load_specs())
    retrain = defs.resolve_job_def("credit_risk_retrain")
    keys = retrain.asset_layer.selected_asset_keys
    partitioned = {k for k in keys if defs.resolve_assets_def(k).partitions_def is not None}
    assert partitioned == set()
    assert CREDIT.key(CREDIT.raw) in keys and CREDIT.key("champion_model") in keys
