"""`aimass trace`: a prediction served by the real champion bento, followed back to its data and code."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance
from mlflow.tracking import MlflowClient

from aimass_pipeline.collection.landing import list_landed_files
from aimass_pipeline.core.registry import champion_version
from aimass_pipeline.settings import Settings, load_settings
from aimass_pipeline_tests.bento_server import bento_server
from aimass_pipeline_tests.conftest import _ENV_KEYS, AIMASS, ROOT, env_for
from aimass_pipeline_tests.serving.test_bento_service import VALID

USE_CASE = "credit_risk"
COMMIT = re.compile(r"^([0-9a-f]{40})(-dirty)?$")


def _settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # The home's own lake and keys, as `aimass run` made them, not what a shell or another test exported.
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    return load_settings(home)


@pytest.fixture(scope="module")
def served_prediction(lifecycle_home: Path) -> Iterator[dict]:
    """One /predict answer from the lifecycle home's bento, served with prediction logging and then stopped,
    so the log is flushed to the lake."""
    with pytest.MonkeyPatch.context() as mp:
        settings = _settings(lifecycle_home, mp)
        env = {**settings.child_env(), "AIMASS_PREDICTION_FLUSH_S": "0.2"}
        # Leaving the block is the clean stop (SIGTERM) that flushes the prediction log.
        with bento_server(settings, USE_CASE, lifecycle_home.parent / "trace-serve.log", env) as server:
            response = requests.post(f"{server.url}/predict", json={"records": [VALID]}, timeout=30)
            assert response.status_code == 200, response.text
        yield response.json()


def _trace(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = env_for(home)
    env.pop("AIMASS_LAKE_URL", None)
    return subprocess.run(
        [AIMASS, "trace", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_trace_follows_a_served_prediction_to_its_runs_data_and_code(
    lifecycle_home: Path, served_prediction: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    prediction = served_prediction["predictions"][0]
    result = _trace(lifecycle_home, prediction["prediction_id"], "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    lineage = json.loads(result.stdout)

    settings = _settings(lifecycle_home, monkeypatch)
    champion = champion_version(MlflowClient(tracking_uri=settings.mlflow_tracking_uri), USE_CASE)
    assert lineage["use_case"] == USE_CASE
    assert lineage["inputs"] == VALID
    assert lineage["output"]["label"] == prediction["label"]
    assert lineage["output"]["probability"] == pytest.approx(prediction["probability"])
    assert (lineage["model_name"], lineage["model_version"]) == (USE_CASE, str(champion.version))
    assert lineage["model_version"] == served_prediction["model_version"]
    assert lineage["mlflow_run_id"] == champion.run_id
    assert lineage["mlflow_run_url"].endswith(f"/runs/{champion.run_id}")

    with DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        run = instance.get_run_by_id(lineage["dagster_run_id"])
    assert run is not None, f"Dagster run {lineage['dagster_run_id']} is not in the home's instance"
    assert run.job_name == f"{USE_CASE}_lifecycle"
    assert lineage["dagster_run_status"] == run.status.value == "SUCCESS"
    assert lineage["dagster_run_url"].endswith(f"/runs/{run.run_id}")

    landed = list_landed_files(settings.landing_dir(USE_CASE))
    assert landed, "the lifecycle home has no landed file"
    batches = {(b["source_file"], b["sha256"]) for b in lineage["batches"]}
    assert {(f.name, f.sha256) for f in landed} <= batches
    assert all(b["problem"] is None for b in lineage["batches"])

    commit = COMMIT.match(lineage["code_version"])
    assert commit, lineage["code_version"]
    known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit.group(1)}^{{commit}}"])
    assert known.returncode == 0, f"{commit.group(1)} is not a commit of this checkout"
    assert lineage["problems"] == []


def test_trace_prints_the_lineage_for_people(lifecycle_home: Path, served_prediction: dict) -> None:
    prediction_id = served_prediction["predictions"][0]["prediction_id"]
    result = _trace(lifecycle_home, prediction_id)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert prediction_id in out
    assert f"{USE_CASE} version {served_prediction['model_version']}" in out
    assert "/#/experiments/" in out and "/runs/" in out
    assert re.search(r"sha256 [0-9a-f]{64}", out), out


def test_trace_of_an_unknown_prediction_exits_1_with_a_message(
    lifecycle_home: Path, served_prediction: dict
) -> None:
    result = _trace(lifecycle_home, "0" * 32)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"no prediction '{'0' * 32}'" in result.stderr
    assert "Traceback" not in result.stderr


def test_trace_still_answers_for_a_retired_use_case(
    lifecycle_home: Path, served_prediction: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import instance_for_test

    from aimass_pipeline.cli.retire import retire, unretire
    from aimass_pipeline.orchestration.retirement import loaded_repository

    settings = _settings(lifecycle_home, monkeypatch)
    prediction_id = served_prediction["predictions"][0]["prediction_id"]
    module = "aimass_pipeline_tests.cli.retire_defs"
    with instance_for_test() as instance, loaded_repository(instance, module=module) as repo:
        retire(settings, USE_CASE, "trace test", instance, repo)
        try:
            result = _trace(lifecycle_home, prediction_id, "--json")
        finally:
            unretire(settings, USE_CASE, "trace test done", instance, repo)
    assert result.returncode == 0, result.stdout + result.stderr
    lineage = json.loads(result.stdout)
    assert (lineage["use_case"], lineage["prediction_id"]) == (USE_CASE, prediction_id)
    assert lineage["model_version"] == served_prediction["model_version"]
