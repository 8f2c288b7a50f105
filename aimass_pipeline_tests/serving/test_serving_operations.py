"""Operations of a served bento: prediction ids, the prediction log in the lake, /metrics, the API key.

One bento, one ``bentoml serve`` for the module, started with ``AIMASS_API_KEY`` and a short flush interval;
``test_bento_service.py`` covers the same service without a key.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from aimass_pipeline.deployment.bento import build_champion_bento
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.bento_server import bento_server, stop
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
