"""Checks of shadow and canary in a real ``bentoml serve``, set by the `aimass shadow` / `aimass canary` commands: a
shadow's answer never reaches a client (bodies equal the champion's alone across 500 requests) while its
rows are logged under the served rows' ids; a canary answers its hashed share, stickily per entity.

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


def check_canary(server: str, capsys: pytest.CaptureFixture[str]) -> None:
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
    assert main(["canary", USE_CASE, "--stop"]) == 0
    _wait_for(
        "the champion alone",
        lambda: all(_post(session, server, _record(i))["model_version"] == CHAMPION for i in range(20)),
    )
