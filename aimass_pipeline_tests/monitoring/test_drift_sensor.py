"""The drift sensor on a real Dagster instance: one run per drift report, none within the cool-down."""

import json
import time

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
    instance_for_test,
)

from aimass_pipeline.monitoring.sensors import build_drift_sensor
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline_tests.conftest import CREDIT_SPEC

UC = UseCase(CREDIT_SPEC)
COOLDOWN = CREDIT_SPEC.monitoring.cooldown_s


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def _report(instance: DagsterInstance, name: str, recommended: bool) -> int:
    instance.report_runless_asset_event(
        AssetMaterialization(
            UC.key(name), metadata={"retrain_recommended": recommended, "reason": f"{name} test report"}
        )
    )
    return instance.fetch_materializations(UC.key(name), limit=1).records[0].storage_id


def _tick(instance: DagsterInstance, cursor: str | None):
    context = build_sensor_context(instance=instance, cursor=cursor)
    return build_drift_sensor(UC)(context), context.cursor


def _aged(cursor: str, seconds: float) -> str:
    """The same cursor as if its launch happened ``seconds`` earlier."""
    state = json.loads(cursor)
    state["last_launch"] -= seconds
    return json.dumps(state)


def test_one_request_per_drift_event_and_a_cooldown(instance: DagsterInstance) -> None:
    quiet, cursor = _tick(instance, None)
    assert isinstance(quiet, SkipReason) and "no monitoring report yet" in quiet.skip_message

    _report(instance, "feature_drift", recommended=False)
    stable, cursor = _tick(instance, cursor)
    assert isinstance(stable, SkipReason) and "feature_drift test report" in stable.skip_message

    first_event = _report(instance, "feature_drift", recommended=True)
    request, cursor = _tick(instance, cursor)
    assert isinstance(request, RunRequest)
    assert request.tags["aimass/trigger"] == "drift" and request.tags["aimass/drift_asset"] == "feature_drift"
    assert request.run_key == f"credit_risk:drift:feature_drift:{first_event}"
    assert build_drift_sensor(UC).job_name == UC.retrain_job == "credit_risk_retrain"

    aged = _aged(cursor, COOLDOWN + 1)
    same, _ = _tick(instance, aged)
    assert isinstance(same, SkipReason) and "already acted on" in same.skip_message

    second_event = _report(instance, "prediction_drift", recommended=True)
    within, _ = _tick(instance, cursor)
    assert isinstance(within, SkipReason) and "cool-down" in within.skip_message

    again, cursor = _tick(instance, aged)
    assert isinstance(again, RunRequest)
    assert again.run_key == f"credit_risk:drift:prediction_drift:{second_event}"
    assert json.loads(cursor)["last_launch"] == pytest.approx(time.time(), abs=60)


def test_a_cleared_drift_launches_nothing(instance: DagsterInstance) -> None:
    _report(instance, "feature_drift", recommended=True)
    _report(instance, "feature_drift", recommended=False)

    result, _ = _tick(instance, None)

    assert isinstance(result, SkipReason) and "no report recommends" in result.skip_message
