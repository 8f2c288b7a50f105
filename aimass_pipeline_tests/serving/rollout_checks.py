"""Checks of shadow and canary in a real ``bentoml serve``, set by the `aimass shadow` / `aimass canary` commands: a
shadow's answer never reaches a client (bodies equal the champion's alone across 500 requests) while its
rows are logged under the served rows' ids; a canary answers its hashed share, stickily per entity, shows in
`aimass status`, and, deliberately degraded with labels landing, is stopped by its sensor while every client
request succeeds (each ``_post`` asserts a 200) and the champion stays.

They run against test_bento_service's server (champion version 1, version 2 registered): one server start
less. The services poll the serving state every AIMASS_CHAMPION_POLL_S (10 s there), hence the waits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from aimass_pipeline.cli.main import main
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.rollout import read_state
from aimass_pipeline.rollout.logs import SHADOW_PREFIX, read_log
from aimass_pipeline.settings import Settings

USE_CASE = "credit_risk"
CHAMPION, CHALLENGER = "1", "2"
REQUESTS = 500
WAIT_S = 45.0


def _record(i: int) -> dict[str, Any]:
    return {
        "Seniority": 3,
        "Home": "rent",
        "Time": 36,
        "Age": 30,
        "Marital": "single",
        "Records": "no",
        "Job": "fixed",
        "Expenses": 60,
        "Income": 120.5,
        "Assets": 0.0,
        "Debt": 0.0,
        "Amount": 800,
        "Price": 1000,
    } | {"Amount": 100 + i, "Seniority": i % 40, "Age": 20 + i % 50}


def _post(session: requests.Session, url: str, record: dict[str, Any]) -> dict[str, Any]:
    response = session.post(f"{url}/predict", json={"records": [record]}, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return response.json()


def _answer(body: dict[str, Any]) -> tuple:
    """What a client reads, without the fresh ids."""
    return body["model_version"], [(p["probability"], p["label"]) for p in body["predictions"]]


def _wait_for(what: str, check, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def check_shadow(settings: Settings, server: str, log_path: Path) -> None:
    session = requests.Session()
    alone = [_answer(_post(session, server, _record(i))) for i in range(REQUESTS)]
    assert main(["shadow", USE_CASE, CHALLENGER]) == 0
    _wait_for(
        "the shadow to load", lambda: f"loaded version {CHALLENGER}" in log_path.read_text(errors="replace")
    )
    bodies = [_post(session, server, _record(i)) for i in range(REQUESTS)]
    assert [_answer(b) for b in bodies] == alone
    served_ids = {b["predictions"][0]["prediction_id"] for b in bodies}
    lake = Lake(settings.lake_url)

    def shadow_rows():
        rows = read_log(lake.fs, lake.root, USE_CASE, "2000-01-01T00:00:00+00:00", prefix=SHADOW_PREFIX)
        return (rows,) if served_ids <= set(rows["prediction_id"]) else None

    rows = _wait_for("the shadow rows", shadow_rows)[0]
    assert set(rows["role"]) == {"shadow"} and set(rows["model_version"].astype(str)) == {CHALLENGER}
    # The shadow is another model: had its answers leaked, the bodies above would differ.
    paired = rows.set_index("prediction_id").loc[sorted(served_ids), "probability"]
    served = {b["predictions"][0]["prediction_id"]: b["predictions"][0]["probability"] for b in bodies}
    assert sum(abs(paired[i] - served[i]) > 1e-9 for i in paired.index) > REQUESTS // 2
    assert main(["shadow", USE_CASE, "--stop"]) == 0


def _labels_that_degrade_the_canary(settings: Settings, bodies: list[dict[str, Any]]) -> None:
    """Outcomes as they would land, chosen so the canary is deliberately wrong: each champion answer was
    right, each canary answer wrong."""
    rows = []
    for body in bodies:
        for p in body["predictions"]:
            wrong = {"good": "bad", "bad": "good"}[p["label"]]
            rows.append((p["prediction_id"], wrong if body["model_version"] == CHALLENGER else p["label"]))
    folder = Path(settings.labels_root) / USE_CASE
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["prediction_id,Status", *(f"{i},{label}" for i, label in rows)]
    (folder / "canary_labels.csv").write_text("\n".join(lines) + "\n")


def _tick_canary_sensor(settings: Settings) -> None:
    from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context

    from aimass_pipeline.core.specs import load_specs
    from aimass_pipeline.orchestration.resources import LabelsZoneResource, LakeResource, MlflowResource
    from aimass_pipeline.orchestration.use_case import UseCase
    from aimass_pipeline.rollout.sensors import build_canary_sensor

    resources = {
        "lake": LakeResource(url=settings.lake_url),
        "labels": LabelsZoneResource(root=str(settings.labels_root)),
        "mlflow": MlflowResource(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=str(settings.mlflow_artifacts_uri),
            signing_key=settings.signing_key() or "",
        ),
    }
    sensor = build_canary_sensor(UseCase(load_specs()[USE_CASE]))
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, SensorResult) and isinstance(result.run_requests[0], RunRequest)


def check_canary(settings: Settings, server: str, capsys: pytest.CaptureFixture[str]) -> None:
    session = requests.Session()
    assert main(["canary", USE_CASE, CHALLENGER, "--share", "50"]) == 0
    _wait_for(
        "the canary to answer",
        lambda: any(_post(session, server, _record(i))["model_version"] == CHALLENGER for i in range(20)),
    )
    first = [_post(session, server, _record(i))["model_version"] for i in range(200)]
    again = [_post(session, server, _record(i))["model_version"] for i in range(200)]
    assert first == again  # one entity, one model
    assert 0.35 < first.count(CHALLENGER) / len(first) < 0.65
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    serving = json.loads(capsys.readouterr().out)["use_cases"][USE_CASE]["serving"]
    assert serving["canary"]["version"] == CHALLENGER and serving["canary"]["share"] == 50
    # A degraded canary, labels landing: the sensor stops it; no client saw a failure, the champion stays.
    bodies = [_post(session, server, _record(1000 + i)) for i in range(300)]
    lake = Lake(settings.lake_url)
    _wait_for(
        "the canary's answers in the prediction log",
        lambda: (
            (read_log(lake.fs, lake.root, USE_CASE, "2000-01-01T00:00:00+00:00")["role"] == "canary").sum()
            >= sum(b["model_version"] == CHALLENGER for b in bodies) + first.count(CHALLENGER) * 2
        ),
    )
    _labels_that_degrade_the_canary(settings, bodies)
    _tick_canary_sensor(settings)
    state = read_state(lake, USE_CASE)
    assert state.canary is None and state.last_decision["decision"] == "stop", state.last_decision
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["use_cases"][USE_CASE]
    assert (
        str(status["champion"]["version"]) == CHAMPION
        and status["serving"]["last_decision"]["decision"] == "stop"
    )
    _wait_for(
        "the champion alone",
        lambda: all(_post(session, server, _record(i))["model_version"] == CHAMPION for i in range(20)),
    )
