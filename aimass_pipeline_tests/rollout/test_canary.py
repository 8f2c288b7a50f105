"""The canary decided end to end on plain code and through its sensor, against a real MLflow registry: a
truly better challenger is promoted, a degraded one stopped (the champion unchanged), a breached guard stops it,
and every step lands in the audit trail."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context, materialize

from aimass_pipeline.core import audit, rollout
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.prediction_log import PredictionLogger
from aimass_pipeline.core.registry import champion_version, ensure_store, registry_client
from aimass_pipeline.orchestration.resources import LabelsZoneResource, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.rollout.assets import build_rollout
from aimass_pipeline.rollout.canary import PROMOTE, STOP, evaluate_canary
from aimass_pipeline.rollout.logs import read_log
from aimass_pipeline.rollout.sensors import build_canary_sensor
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC

UC = "credit_risk"
CLASSES = list(CREDIT_SPEC.contract.classes)
TARGET = CREDIT_SPEC.contract.target


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated MLflow database copied into each test's home: migrating one costs ~10 s here."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    ensure_store(f"sqlite:///{path}")
    return path


def _registry(settings: Settings, tmp_path: Path, empty_store: Path):
    target = Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_store, target)
    client = registry_client(settings.mlflow_tracking_uri)
    client.create_registered_model(UC)
    for _ in range(2):
        client.create_model_version(UC, source=str(tmp_path), run_id=None)
    client.set_registered_model_alias(UC, "champion", "1")
    return client


def _traffic(
    settings: Settings, seed: int, canary_quality: float, n: int = 1200, share: float = 0.25
) -> None:
    """Logged answers (champion v1 'served', canary v2 'canary') and their outcomes in the labels zone.
    ``canary_quality`` > 0: the canary's probabilities sit closer to the truth than the champion's."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    to_canary = rng.random(n) < share
    champion_p = np.clip(np.where(truth, 0.6, 0.35) + rng.normal(0, 0.15, n), 0.01, 0.99)
    canary_p = np.clip(champion_p + canary_quality * np.where(truth, 1, -1), 0.01, 0.99)
    logger = PredictionLogger(settings.lake_url, UC, start=False)
    ids = [uuid.uuid4().hex for _ in range(n)]
    for i in range(n):
        p = float(canary_p[i] if to_canary[i] else champion_p[i])
        out = {"prediction_id": ids[i], "probability": p, "label": CLASSES[int(p >= 0.5)]}
        role, version = ("canary", "2") if to_canary[i] else ("served", "1")
        logger.log([{"Age": i}], [out], UC, version, request_id=ids[i], role=role)
    logger.close()
    folder = Path(settings.labels_root) / UC
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"prediction_id": ids, TARGET: [CLASSES[int(t)] for t in truth]}).to_csv(
        folder / "labels.csv", index=False
    )


def _start(lake: Lake, **rule) -> rollout.Arm:
    state = rollout.start_canary(lake, UC, "2", 25.0, "1", rollout.DecisionRule(**rule))
    # The canary's window opens before the traffic below was logged.
    arm = state.canary.model_copy(update={"started_at": "2000-01-01T00:00:00+00:00"})  # type: ignore[union-attr]
    state.canary = arm
    rollout.write_state(lake, state)
    return arm


def _resources(settings: Settings) -> dict:
    return {
        "lake": LakeResource(url=settings.lake_url),
        "labels": LabelsZoneResource(root=str(settings.labels_root)),
        "mlflow": MlflowResource(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=str(settings.mlflow_artifacts_uri),
            signing_key=settings.signing_key() or "",
        ),
    }


def _tick(settings: Settings):
    sensor = build_canary_sensor(UseCase(CREDIT_SPEC))
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(instance=instance, resources=_resources(settings)))
    return result.run_requests[0] if isinstance(result, SensorResult) else result


def test_a_better_challenger_is_promoted_by_the_sensor_with_its_plot_and_audit_trail(
    aimass_home: Settings, tmp_path: Path, empty_store: Path
) -> None:
    client = _registry(aimass_home, tmp_path, empty_store)
    lake = Lake(aimass_home.lake_url)
    _start(lake)
    _traffic(aimass_home, seed=1, canary_quality=0.12)
    request = _tick(aimass_home)
    assert isinstance(request, RunRequest)
    assert str(champion_version(client, UC).version) == "2"
    state = rollout.read_state(lake, UC)
    assert state.canary is None and state.last_decision["decision"] == PROMOTE
    assert state.running["crossed"] and state.running["estimate"] < 0
    steps = [(e["action"], e["evidence"].get("step")) for e in audit.read(lake, UC)]
    assert steps == [(audit.CANARY, "start"), (audit.PROMOTE, None), (audit.CANARY, PROMOTE)]
    assert audit.read(lake, UC)[0]["evidence"]["rule"]["alpha"] == 0.05  # the rule, registered up front
    # The UI's view: the asset the sensor asked for, with the statistic against its boundary.
    result = materialize(build_rollout(UseCase(CREDIT_SPEC)), resources=_resources(aimass_home))
    meta = result.asset_materializations_for_node("credit_risk__canary_decision")[0].metadata
    assert meta["action"].value == PROMOTE and "data:image/png;base64" in meta["plot"].value


def test_a_degraded_challenger_is_stopped_and_the_champion_unchanged(
    aimass_home: Settings, tmp_path: Path, empty_store: Path
) -> None:
    client = _registry(aimass_home, tmp_path, empty_store)
    lake = Lake(aimass_home.lake_url)
    _start(lake)
    _traffic(aimass_home, seed=2, canary_quality=-0.12)
    assert isinstance(_tick(aimass_home), RunRequest)
    assert str(champion_version(client, UC).version) == "1"
    state = rollout.read_state(lake, UC)
    assert state.canary is None and state.last_decision["decision"] == STOP
    assert "mSPRT crossed" in state.last_decision["reason"] and "higher" in state.last_decision["reason"]


def test_equal_traffic_continues_and_a_breached_guard_stops(aimass_home: Settings) -> None:
    lake = Lake(aimass_home.lake_url)
    arm = _start(lake, max_error_rate_increase=0.02)
    _traffic(aimass_home, seed=3, canary_quality=0.0, n=300)
    predictions = read_log(lake.fs, lake.root, UC, arm.started_at)
    labels = pd.read_csv(Path(aimass_home.labels_root) / UC / "labels.csv", dtype=str)
    verdict = evaluate_canary(predictions, labels, TARGET, CLASSES, arm)
    assert verdict.action == "continue", verdict.reason
    stats = [
        {
            "arms": {
                "served": {"requests": 900, "errors": 0, "p99_ms": 10},
                "canary": {"requests": 100, "errors": 9, "p99_ms": 12},
            }
        }
    ]
    verdict = evaluate_canary(predictions, labels, TARGET, CLASSES, arm, stats)
    assert verdict.action == STOP and "error rate 9.0%" in verdict.reason
    slow = [
        {
            "arms": {
                "served": {"requests": 900, "errors": 0, "p99_ms": 10},
                "canary": {"requests": 100, "errors": 0, "p99_ms": 80},
            }
        }
    ]
    assert "p99 latency" in evaluate_canary(predictions, labels, TARGET, CLASSES, arm, slow).reason
    broken = [{"arms": {}, "load_error": "ValueError: cannot score its own input example"}]
    assert (
        "could not be loaded: ValueError"
        in evaluate_canary(predictions, labels, TARGET, CLASSES, arm, broken).reason
    )


def test_no_canary_is_a_skip_and_a_second_canary_is_refused(aimass_home: Settings) -> None:
    assert not isinstance(_tick(aimass_home), RunRequest)
    lake = Lake(aimass_home.lake_url)
    rollout.start_canary(lake, UC, "2", 10, "1", rollout.DecisionRule())
    with pytest.raises(ValueError, match="already running"):
        rollout.start_canary(lake, UC, "3", 10, "1", rollout.DecisionRule())
    with pytest.raises(ValueError, match="already the champion"):
        rollout.start_canary(Lake(str(aimass_home.home / "other")), UC, "1", 10, "1", rollout.DecisionRule())
    summary = rollout.serving_summary(rollout.read_state(lake, UC))
    assert summary["canary"]["share"] == 10 and summary["canary"]["rule"]["metric"] == "brier"
    assert json.dumps(summary)
    assert dt.datetime.fromisoformat(summary["canary"]["started_at"]).tzinfo is not None


def test_a_running_shadow_gets_its_report_with_agreement_and_live_performance(aimass_home: Settings) -> None:
    lake = Lake(aimass_home.lake_url)
    state = rollout.start_shadow(lake, UC, "2", 100.0, "1")
    state.shadow = state.shadow.model_copy(update={"started_at": "2000-01-01T00:00:00+00:00"})  # type: ignore[union-attr]
    rollout.write_state(lake, state)
    rng = np.random.default_rng(4)
    ids = [uuid.uuid4().hex for _ in range(200)]
    served_p, shadow_p = rng.random(200), rng.random(200)
    for prefix, version, probs, role in (
        ("predictions", "1", served_p, "served"),
        ("predictions_shadow", "2", shadow_p, "shadow"),
    ):
        logger = PredictionLogger(aimass_home.lake_url, UC, start=False, prefix=prefix)
        outs = [
            {"prediction_id": i, "probability": float(p), "label": CLASSES[int(p >= 0.5)]}
            for i, p in zip(ids, probs, strict=True)
        ]
        logger.log([{}] * len(ids), outs, UC, version, request_id="r", role=role)
        logger.close()
    folder = Path(aimass_home.labels_root) / UC
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"prediction_id": ids[:100], TARGET: CLASSES[1]}).to_csv(folder / "labels.csv", index=False)
    sensor = build_canary_sensor(UseCase(CREDIT_SPEC))
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(instance=instance, resources=_resources(aimass_home)))
    assert [list(r.asset_selection) for r in result.run_requests] == [
        [UseCase(CREDIT_SPEC).key("shadow_report")]
    ]
    done = materialize(
        build_rollout(UseCase(CREDIT_SPEC)),
        resources=_resources(aimass_home),
        selection="credit_risk/shadow_report",
    )
    report = done.output_for_node("credit_risk__shadow_report")
    agree = np.mean((served_p >= 0.5) == (shadow_p >= 0.5))
    assert (
        report["pairs"] == 200
        and report["labelled_pairs"] == 100
        and report["agreement"] == pytest.approx(agree)
    )
    assert report["live"]["shadow"]["error"] == pytest.approx(np.mean(shadow_p[:100] < 0.5))
