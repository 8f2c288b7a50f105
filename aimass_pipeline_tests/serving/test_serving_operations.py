"""Operations of a served bento: prediction ids, the prediction log in the lake, /metrics, the API key.

One bento, one ``bentoml serve`` for the module, started with ``AIMASS_API_KEY`` and a short flush interval;
``test_bento_service.py`` covers the same service without a key.
"""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from aimass_pipeline.core.retirement import clear_retired, mark_retired
from aimass_pipeline.deployment.bento import build_champion_bento
from aimass_pipeline.serving.lifecycle import api_key_id
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.bento_server import bento_server, steady_loads, stop
from aimass_pipeline_tests.serving.test_bento_service import (
    SPARSE,
    USE_CASE,
    VALID,
    _crown,
    _prepared_settings,
    _register,
    _train,
)

API_KEY = "s3cret-key-for-tests"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Served:
    url: str
    lake: Path
    log_path: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("aimass-ops")
    with pytest.MonkeyPatch.context() as mp:
        settings = _prepared_settings(home, mp)
        _crown(_register(settings, _train(seed=7)))
        build_champion_bento(settings, USE_CASE)
        yield settings


@contextmanager
def _serving(settings: Settings, name: str, **env: str) -> Iterator[tuple[Served, subprocess.Popen[bytes]]]:
    child_env = {k: v for k, v in settings.child_env().items() if not k.startswith("AIMASS_PREDICTION_")}
    log_path = settings.home / f"bentoml-serve-{name}.log"
    with bento_server(settings, USE_CASE, log_path, child_env | env) as server:
        lake = Path(env.get("AIMASS_LAKE_URL", settings.lake_url))
        yield Served(url=server.url, lake=lake, log_path=log_path), server.proc


@pytest.fixture(scope="module")
def served(built: Settings) -> Iterator[Served]:
    with _serving(built, "ops", AIMASS_API_KEY=API_KEY, AIMASS_PREDICTION_FLUSH_S="0.5") as (served, _):
        yield served


def _predict(served: Served, records: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Any:
    response = requests.post(
        f"{served.url}/predict",
        json={"records": records},
        headers=AUTH if headers is None else headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _logged(served: Served) -> pd.DataFrame:
    files = sorted((served.lake / "predictions" / USE_CASE).glob("date=*/hour=*/*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def _samples(served: Served) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = requests.get(f"{served.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_every_prediction_has_a_unique_id_and_the_response_a_request_id(served: Served) -> None:
    first = _predict(served, [VALID, SPARSE, VALID])
    second = _predict(served, [VALID])

    ids = [p["prediction_id"] for body in (first, second) for p in body["predictions"]]
    assert len(ids) == 4
    assert all(HEX32.match(i) for i in ids), ids
    assert len(set(ids)) == 4, "identical records still get distinct ids"
    assert HEX32.match(first["request_id"]) and HEX32.match(second["request_id"])
    assert first["request_id"] != second["request_id"]
    assert first["request_id"] not in ids


def test_predictions_are_written_to_the_lake(served: Served) -> None:
    bodies = [_predict(served, [VALID, SPARSE]), _predict(served, [SPARSE])]
    expected = {
        p["prediction_id"]: (body["request_id"], p["probability"], p["label"])
        for body in bodies
        for p in body["predictions"]
    }

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        frame = _logged(served)
        if not frame.empty and set(expected) <= set(frame["prediction_id"]):
            break
        time.sleep(0.25)
    else:
        pytest.fail(f"predictions not in the lake after 15 s:\n{served.log_path.read_text()[-3000:]}")

    rows = frame.set_index("prediction_id").loc[list(expected)]
    assert rows.index.is_unique, "each prediction logged once"
    for prediction_id, (request_id, probability, label) in expected.items():
        row = rows.loc[prediction_id]
        assert row["request_id"] == request_id
        assert row["probability"] == pytest.approx(probability)
        assert row["label"] == label
        assert row["model_name"] == USE_CASE
        assert row["model_version"] == "1"
    first_ids = [p["prediction_id"] for p in bodies[0]["predictions"]]
    assert json.loads(rows.loc[first_ids[0], "inputs"])["Income"] == VALID["Income"]
    assert json.loads(rows.loc[first_ids[1], "inputs"])["Income"] is None
    assert str(frame["ts"].dt.tz) == "UTC"
    # The key's id, never the key, with every prediction.
    assert set(rows["api_key_id"]) == {api_key_id(API_KEY)}
    assert API_KEY not in frame.to_csv()
    assert (pd.Timestamp.now(tz="UTC") - rows["ts"]).max() < pd.Timedelta(minutes=5)


def test_metrics_count_predictions_by_label_and_probability(served: Served) -> None:
    before = _samples(served)
    body = _predict(served, [VALID, SPARSE, VALID])
    after = _samples(served)

    labels = [p["label"] for p in body["predictions"]]
    base = {("use_case", USE_CASE), ("model_version", "1")}
    for label in set(labels):
        key = ("aimass_predictions_total", frozenset(base | {("label", label)}))
        assert after[key] - before.get(key, 0.0) == labels.count(label), key
    count = ("aimass_prediction_probability_count", frozenset(base))
    assert after[count] - before.get(count, 0.0) == 3
    total = ("aimass_prediction_probability_sum", frozenset(base))
    assert after[total] - before.get(total, 0.0) == pytest.approx(
        sum(p["probability"] for p in body["predictions"])
    )
    top = ("aimass_prediction_probability_bucket", frozenset(base | {("le", "+Inf")}))
    assert after[top] - before.get(top, 0.0) == 3
    # BentoML's own request metrics are still there: ours are added, not in place of them.
    assert any(name.startswith("bentoml_") for name, _ in after)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-bearer"),
        pytest.param({"X-API-Key": "wrong"}, id="wrong-x-api-key"),
        pytest.param({"Authorization": f"Basic {API_KEY}"}, id="right-key-wrong-scheme"),
        pytest.param({"Authorization": f"Bearer {API_KEY[:-1]}"}, id="prefix-of-the-key"),
    ],
)
def test_predict_without_the_key_is_401(served: Served, headers: dict[str, str]) -> None:
    # An invalid body too: the key is checked before the input, so nothing about the schema leaks.
    response = requests.post(
        f"{served.url}/predict", json={"records": [{"nope": 1}]}, headers=headers, timeout=10
    )

    assert response.status_code == 401, response.text
    assert "API key" in response.text
    assert "nope" not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": f"Bearer {API_KEY}"}, id="bearer"),
        pytest.param({"authorization": f"bearer {API_KEY}"}, id="bearer-lowercase"),
        pytest.param({"X-API-Key": API_KEY}, id="x-api-key"),
    ],
)
def test_predict_with_the_key_is_200(served: Served, headers: dict[str, str]) -> None:
    body = _predict(served, [VALID], headers=headers)

    assert len(body["predictions"]) == 1


def _status_within(served: Served, status: int, timeout_s: float = 10.0) -> requests.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        response = requests.post(f"{served.url}/predict", json={"records": [VALID]}, headers=AUTH, timeout=30)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_retired_use_case_answers_410_and_serves_again_once_unretired(served: Served) -> None:
    record = {"use_case": USE_CASE, "retired_at": "2026-12-06T16:00:00+00:00", "reason": "product withdrawn"}
    mark_retired(str(served.lake), {}, USE_CASE, record)
    try:
        gone = _status_within(served, 410)
        assert gone.status_code == 410, gone.text
        assert gone.json()["use_case"] == USE_CASE
        assert "retired" in gone.json()["error"] and "product withdrawn" in gone.json()["error"]
        assert requests.get(f"{served.url}/readyz", timeout=10).status_code == 200  # probes still answer
    finally:
        clear_retired(str(served.lake), {}, USE_CASE)
    back = _status_within(served, 200)
    assert back.status_code == 200, back.text


def test_probes_and_metrics_need_no_key(served: Served) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/metrics"):
        assert requests.get(f"{served.url}{path}", timeout=5).status_code == 200, path
    # ... while everything else does, the API docs included.
    assert requests.get(f"{served.url}/docs.json", timeout=5).status_code == 401


def test_a_clean_stop_flushes_the_buffer(built: Settings) -> None:
    # An hour-long interval: only the shutdown hook can have written these rows. Its own lake, so rows
    # from the module's other server cannot make this pass.
    lake = built.home / "lake-shutdown"
    with _serving(built, "shutdown", AIMASS_LAKE_URL=str(lake), AIMASS_PREDICTION_FLUSH_S="3600") as (
        served,
        proc,
    ):
        ids = [p["prediction_id"] for p in _predict(served, [VALID, SPARSE], headers={})["predictions"]]
        time.sleep(1)
        assert _logged(served).empty, "nothing is written before the interval or the stop"
        stop(proc)
        assert proc.returncode == 0, served.log_path.read_text()[-3000:]

    assert sorted(_logged(served)["prediction_id"]) == sorted(ids)


HEALTH_BUDGET_S = 0.1
ROUNDS = 3


def test_health_probes_answer_while_a_10k_request_is_scored(served: Served) -> None:
    """Fault 9: a 10,000-record /predict is parsed and scored off the event loop, so /healthz answers within
    100 ms throughout (every probe of three such requests measured, not one lucky probe)."""
    session = requests.Session()
    session.get(f"{served.url}/healthz", timeout=5)  # connection open before the clock starts
    probes: list[float] = []
    rounds: list[str] = []
    for _ in range(ROUNDS):
        result: dict[str, Any] = {}

        def big_request(result: dict[str, Any] = result) -> None:
            started = time.monotonic()
            result["body"] = _predict(served, [VALID] * 10_000)
            result["seconds"] = time.monotonic() - started

        worker = threading.Thread(target=big_request)
        worker.start()
        these: list[float] = []
        while worker.is_alive():
            started = time.monotonic()
            assert session.get(f"{served.url}/healthz", timeout=10).status_code == 200
            these.append(time.monotonic() - started)
            time.sleep(0.01)
        worker.join()
        assert len(result["body"]["predictions"]) == 10_000
        probes += these
        rounds.append(f"{result['seconds']:.2f} s: {len(these)} probes, max {max(these) * 1000:.0f} ms")

    slow = sorted(p for p in probes if p > HEALTH_BUDGET_S)
    print(
        "10k requests:", "; ".join(rounds), f"; median probe {sorted(probes)[len(probes) // 2] * 1000:.1f} ms"
    )
    assert not slow, (
        f"{len(slow)} of {len(probes)} /healthz probes over {HEALTH_BUDGET_S * 1000:.0f} ms during 10k-record "
        f"requests ({'; '.join(rounds)})"
    )
    assert len(probes) >= 3 * ROUNDS, f"only {len(probes)} probes: {rounds}"


@dataclass
class _Traffic:
    """Five records per /predict, ~20 requests a second, until stopped: every id answered, every failure."""

    url: str
    ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    requests_sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            self.requests_sent += 1
            try:
                response = session.post(
                    f"{self.url}/predict", json={"records": [VALID, SPARSE] * 2 + [VALID]}, timeout=30
                )
            except requests.RequestException as exc:
                self.failures.append(str(exc))
            else:
                if response.status_code == 200:
                    self.ids += [p["prediction_id"] for p in response.json()["predictions"]]
                else:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
            self.stop.wait(0.05)


OUTAGE_S = 26


def test_drill_seaweedfs_stops_and_restarts_while_predictions_are_logged(
    built: Settings, tmp_path: Path
) -> None:
    """Drill: the S3 lake (SeaweedFS) goes away for ~26 s under steady traffic and comes back on the same
    ports and data; no request fails, no row is dropped, every prediction id is in the log and traceable."""
    from aimass_pipeline.core.lake import Lake
    from aimass_pipeline.core.lineage import find_prediction
    from aimass_pipeline_tests.s3.seaweed import BUCKET, free_ports, weed_mini

    data, ports = tmp_path / "seaweedfs", free_ports()
    data.mkdir()
    lake_url = f"s3://{BUCKET}/drill"
    with ExitStack() as before, ExitStack() as after:
        s3 = before.enter_context(weed_mini(data, ports))
        env = {**s3.env, "AIMASS_LAKE_URL": lake_url, "AIMASS_PREDICTION_FLUSH_S": "0.5"}
        with _serving(built, "drill", **env) as (served, proc):
            traffic = _Traffic(served.url)
            with steady_loads(traffic):
                time.sleep(2)
                before.close()  # SeaweedFS stopped (SIGTERM, waited for)
                with pytest.raises(ConnectionRefusedError):  # it really is gone
                    socket.create_connection(("127.0.0.1", ports["s3.port"]), timeout=2).close()
                # Longer than one write's retries against a refused connection (~23 s with s3fs's defaults),
                # so a flush fails and its part waits in the buffer for the restart.
                time.sleep(OUTAGE_S)
                after.enter_context(weed_mini(data, ports))  # same ports, same data dir
                time.sleep(3)
            counters = [
                v
                for (name, _), v in _samples(served).items()
                if name == "aimass_prediction_log_dropped_rows_total"
            ]
            assert counters, "/metrics must expose the dropped-rows counter"
            dropped = sum(counters)
            stop(proc)
            assert proc.returncode == 0, served.log_path.read_text()[-3000:]
        server_log = served.log_path.read_text(errors="replace")
        # s3fs's retries may outlast the outage (a write that succeeds late) or not (a failed write, retried).
        failed_flushes = server_log.count("could not write")
        late_writes = server_log.count("the lake was slow to answer")

        lake = Lake(lake_url, s3.storage_options)
        parts = [p for p in lake.fs.find(lake.path("predictions")) if p.endswith(".parquet")]
        frame = pd.concat([pd.read_parquet(lake.fs.open(p)) for p in parts], ignore_index=True)
        missing = [i for i in traffic.ids if i not in set(frame["prediction_id"])]
        # The lookup `aimass trace` uses, on the first and last id and a seeded sample.
        sample = random.Random(5).sample(traffic.ids, 10) + [traffic.ids[0], traffic.ids[-1]]
        traced = [find_prediction(lake, pid)[1]["prediction_id"] for pid in sample]

    duplicates = int(frame["prediction_id"].duplicated().sum())
    print(
        f"drill: {traffic.requests_sent} requests, {len(traffic.failures)} failed; {len(traffic.ids)} rows sent, "
        f"{len(traffic.ids) - len(missing)} traced in {len(parts)} parts ({duplicates} duplicate rows), "
        f"{dropped:.0f} dropped; {failed_flushes} failed and {late_writes} late writes while S3 was down"
    )
    assert not traffic.failures, traffic.failures[:3]
    assert failed_flushes + late_writes >= 1, "the server never saw the outage: the drill proved nothing"
    assert dropped == 0
    assert not missing, f"{len(missing)} of {len(traffic.ids)} predictions not in the log, e.g. {missing[:3]}"
    assert traced == sample
    assert duplicates == 0
