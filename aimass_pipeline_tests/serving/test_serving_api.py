"""The serving API under bad input, fuzzing and a champion swap: one real ``bentoml serve`` of a built bento.

The served bento pins version 1 of two registered versions and polls the registry every second, so the swap
test can promote version 2 and roll back while requests keep coming.
"""

import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from mlflow import MlflowClient
from schemathesis import GenerationMode

from aimass_pipeline.cli.serve import serve_command
from aimass_pipeline.core import audit
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.processes import reset_signals
from aimass_pipeline.core.registry import promote, rollback
from aimass_pipeline.deployment.bento import build_champion_bento
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.bento_server import SteadyLoad, bento_server, steady_loads
from aimass_pipeline_tests.conftest import free_port
from aimass_pipeline_tests.serving.test_bento_service import (
    SPARSE,
    USE_CASE,
    VALID,
    _crown,
    _prepared_settings,
    _register,
    _train,
)

POLL_S = 1.0
MAX_BODY_BYTES = 4 * 1024 * 1024
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Served:
    settings: Settings
    url: str
    log_path: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("aimass-api")
    with pytest.MonkeyPatch.context() as mp:
        settings = _prepared_settings(home, mp)
        first = _register(settings, _train(seed=7))
        _register(settings, _train(seed=8))
        _crown(first)
        build_champion_bento(settings, USE_CASE)
        yield settings


@pytest.fixture(scope="module")
def served(built: Settings) -> Iterator[Served]:
    env = built.child_env() | {
        "AIMASS_CHAMPION_POLL_S": str(POLL_S),
        "AIMASS_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "AIMASS_PREDICTION_LOG": "off",
    }
    with bento_server(built, USE_CASE, built.home / "bentoml-serve-api.log", env) as server:
        yield Served(settings=built, url=server.url, log_path=server.log_path)


def _post(served: Served, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    data = json.dumps(body) if isinstance(body, dict | list) else body
    return requests.post(
        f"{served.url}{path}", data=data, headers=JSON if headers is None else headers, timeout=60
    )


def _raw_body(**overrides: str) -> str:
    """A request for VALID, some values replaced by raw tokens (NaN, Infinity: Python's json writes them)."""
    text = json.dumps({"records": [VALID]})
    for name, token in overrides.items():
        text = text.replace(f'"{name}": {json.dumps(VALID[name])}', f'"{name}": {token}')
    assert all(f'"{name}": {token}' in text for name, token in overrides.items())
    return text


@pytest.mark.parametrize("path", ["/predict", "/predict_batch"])
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"records": [VALID | {"Colour": "red"}]}, ["records", 0, "Colour"], id="unknown-field"),
        pytest.param({"records": [VALID], "extra": 1}, ["extra"], id="unknown-top-level-field"),
        pytest.param({"records": [VALID | {"Age": "forty"}]}, ["records", 0, "Age"], id="wrong-type"),
        pytest.param({"records": [VALID | {"Age": True}]}, ["records", 0, "Age"], id="bool-for-int"),
        pytest.param({"records": [VALID, VALID | {"Debt": -1.0}]}, ["records", 1, "Debt"], id="out-of-range"),
        pytest.param(_raw_body(Income="NaN"), ["records", 0, "Income"], id="nan"),
        pytest.param(_raw_body(Age="NaN"), ["records", 0, "Age"], id="nan-for-int"),
        pytest.param(_raw_body(Assets="Infinity"), ["records", 0, "Assets"], id="inf"),
        pytest.param(_raw_body(Debt="-Infinity"), ["records", 0, "Debt"], id="-inf"),
        pytest.param({"records": []}, ["records"], id="empty-list"),
        pytest.param({}, ["records"], id="no-records"),
        pytest.param({"records": [VALID] * 10_001}, ["records"], id="too-many-records"),
    ],
)
def test_invalid_input_is_422_naming_the_field(served: Served, path: str, body: Any, loc: list[Any]) -> None:
    response = _post(served, path, body)

    assert response.status_code == 422, response.text
    assert loc in [err["loc"] for err in response.json()["detail"]], response.text


def test_a_batch_request_over_its_limit_is_422(served: Served) -> None:
    response = _post(served, "/predict_batch", {"records": [VALID] * 1_001})

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["records"]


@pytest.mark.parametrize("body", ['{"records": [', "records=1", ""], ids=["truncated", "form", "empty"])
def test_a_body_that_is_not_json_is_400(served: Served, body: str) -> None:
    response = _post(served, "/predict", body)

    assert response.status_code == (422 if body == "" else 400), response.text
    if body:
        assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}],
    ids=["text", "form", "none"],
)
def test_a_wrong_content_type_is_415(served: Served, headers: dict[str, str]) -> None:
    response = requests.post(
        f"{served.url}/predict", data=json.dumps({"records": [VALID]}), headers=headers, timeout=30
    )

    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]


def test_a_body_over_the_limit_is_413_with_or_without_content_length(served: Served) -> None:
    huge = b'{"records": [' + b" " * (MAX_BODY_BYTES + 1) + b"]}"
    with_length = _post(served, "/predict", huge)

    def chunks() -> Iterator[bytes]:  # requests sends a generator chunked, without Content-Length
        for start in range(0, len(huge), 256 * 1024):
            yield huge[start : start + 256 * 1024]

    chunked = _post(served, "/predict", chunks())

    for response in (with_length, chunked):
        assert response.status_code == 413, response.text
        assert response.json()["limit_bytes"] == MAX_BODY_BYTES
    assert chunked.request.headers.get("Transfer-Encoding") == "chunked"
    # Just under the limit is read and validated as usual.
    padded = b'{"records": [' + b" " * (MAX_BODY_BYTES - 100) + b"]}"
    assert _post(served, "/predict", padded).status_code == 422


def test_predict_batch_answers_like_predict(served: Served) -> None:
    records = [VALID, SPARSE, VALID | {"Seniority": 50, "Home": "owner"}, SPARSE | {"Debt": 5_000.0}]
    single = _post(served, "/predict", {"records": records})
    assert single.status_code == 200, single.text
    expected = single.json()

    # Concurrent requests, so that adaptive batching merges some of them into one model call.
    results: list[requests.Response] = []

    def call(i: int) -> None:
        results.append(_post(served, "/predict_batch", {"records": records[i % 4 :] or records}))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8
    by_record = {
        json.dumps(r, sort_keys=True): p for r, p in zip(records, expected["predictions"], strict=True)
    }
    ids = set()
    for response in results:
        assert response.status_code == 200, response.text
        answers = response.json()
        sent = json.loads(response.request.body)["records"]
        assert len(answers) == len(sent)
        for record, answer in zip(sent, answers, strict=True):
            want = by_record[json.dumps(record, sort_keys=True)]
            assert math.isclose(answer["probability"], want["probability"], abs_tol=1e-9)
            assert answer["label"] == want["label"]
            assert (answer["model_name"], answer["model_version"]) == (expected["model_name"], "1")
            ids.add(answer["prediction_id"])
    assert len(ids) == sum(len(json.loads(r.request.body)["records"]) for r in results), "ids are unique"


def test_openapi_has_both_paths_and_a_valid_example(served: Served) -> None:
    spec = requests.get(f"{served.url}/docs.json", timeout=30).json()

    for path in ("/predict", "/predict_batch"):
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["additionalProperties"] is False
        example = schema["example"]
        response = _post(served, path, example)
        assert response.status_code == 200, response.text
    record = spec["components"]["schemas"][f"{USE_CASE}_record"]
    assert record["properties"]["Age"]["minimum"] == 18


def test_schemathesis_finds_no_server_error(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/docs.json")
    statuses: list[int] = []
    for path in ("/predict", "/predict_batch"):
        operation = schema[path]["POST"]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=30,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases every run
                suppress_health_check=list(HealthCheck),
            )
            def no_5xx(case: Any) -> None:
                response = case.call(base_url=served.url, timeout=60)
                statuses.append(response.status_code)
                assert response.status_code < 500, f"{case.body!r} -> {response.status_code} {response.text}"

            no_5xx()
    assert 200 in statuses and 422 in statuses, statuses


def test_a_promotion_and_a_rollback_reach_the_service_under_load_without_a_failed_request(
    served: Served,
) -> None:
    client = MlflowClient(tracking_uri=served.settings.mlflow_tracking_uri)
    loads = [SteadyLoad(served.url, VALID, "/predict"), SteadyLoad(served.url, VALID, "/predict_batch")]
    with steady_loads(*loads):
        time.sleep(1)
        promoted_at = time.monotonic()
        promote(client, USE_CASE, "2")
        to_new = max(load.first_answer_from("2", promoted_at, timeout_s=POLL_S + 20) for load in loads)

        # What `aimass rollback` does to the registry (test_lifecycle runs the command itself, which also
        # rebuilds the bento for the next start: a minute here, and nothing the running service waits for).
        rolled_back_at = time.monotonic()
        assert rollback(client, USE_CASE) == ("1", "2")
        to_old = max(load.first_answer_from("1", rolled_back_at, timeout_s=POLL_S + 20) for load in loads)
        time.sleep(1)

    for load in loads:
        assert load.failures == [], load.failures[:5]
        versions = [v for _, v in load.answers]
        # 1 ... 1, 2 ... 2, 1 ... 1: each swap happens once, no answer flips back and forth.
        changes = [b for a, b in zip(versions, versions[1:], strict=False) if a != b]
        assert changes == ["2", "1"], (load.path, versions)
        assert len(versions) > 10, load.path
    # Within one poll interval plus the load, with room for a busy machine.
    assert to_new < POLL_S + 10 and to_old < POLL_S + 10, (to_new, to_old)
    # Each worker's swaps are on the audit trail (the service runs one worker here).
    swaps = [e for e in audit.read(Lake(served.settings.lake_url), USE_CASE) if e["action"] == audit.SWAP]
    assert [(e["evidence"]["from"], e["evidence"]["to"]) for e in swaps][-2:] == [("1", "2"), ("2", "1")]
    assert all(e["who"].startswith("service@") for e in swaps)
    answers = sum(len(load.answers) for load in loads)
    print(f"swap to v2 after {to_new:.2f} s, back to v1 after {to_old:.2f} s; {answers} answers, 0 failed")


@pytest.mark.parametrize("missing", ["registry", "bento-model"])
def test_an_unreachable_model_store_at_start_fails_clearly_after_retries(
    built: Settings, missing: str
) -> None:
    env = built.child_env() | {"AIMASS_STARTUP_RETRIES": "1", "AIMASS_PREDICTION_LOG": "off"}
    if missing == "registry":
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{built.home / 'gone' / 'mlflow.db'}"
        expected = "the MLflow model registry at sqlite:///"
    else:
        # A copy of the BentoML home without its models: the bento is there, the model it pins is not.
        home = built.home / "bentoml-without-models"
        subprocess.run(["cp", "-r", str(built.bentoml_home), str(home)], check=True)
        subprocess.run(["rm", "-rf", str(home / "models")], check=True)
        env["BENTOML_HOME"] = str(home)
        expected = f"model {USE_CASE}:v1 in the BentoML model store under {home}"

    started = time.monotonic()
    result = subprocess.run(
        serve_command(built, USE_CASE, free_port()),
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=reset_signals,
    )

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"{expected}" in output and "unreachable after 2 attempts" in output, output[-3000:]
    assert "(attempt 1/2)" in output, "one retry, logged"
    assert time.monotonic() - started < 200
