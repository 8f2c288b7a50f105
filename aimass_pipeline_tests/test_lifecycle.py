"""The whole lifecycle on the real credit data, as `make run` does it, then served over HTTP."""

import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import mlflow
import pytest
import requests
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from mlflow.tracking import MlflowClient

from aimass_pipeline.deployment.bento import latest_bento_tag
from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.conftest import AIMASS, CREDIT_RISK, LIFECYCLE_RUN, ROOT, env_for, free_port

EXPECTED_ASSETS = {
    "raw_applications",
    "clean_applications",
    "stg_credit_applications",
    "credit_features",
    "credit_features_profile",
    "training_set",
    "frozen_holdout",
    "logreg_params",
    "random_forest_params",
    "xgboost_params",
    "torch_mlp_params",
    "logreg_candidate",
    "random_forest_candidate",
    "xgboost_candidate",
    "torch_mlp_candidate",
    "ensemble_candidate",
    "candidate_evaluation",
    "champion_model",
    "champion_bento",
}


def _status(home: Path) -> dict:
    result = subprocess.run(
        [AIMASS, "status", "--json"], env=env_for(home), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def settings(lifecycle_home: Path):
    return load_settings(lifecycle_home)


def test_every_stage_materialised_with_checks_passed(lifecycle_home: Path) -> None:
    os.environ["DAGSTER_HOME"] = str(lifecycle_home / "dagster")
    with DagsterInstance.get() as instance:
        [run] = instance.get_runs(filters=RunsFilter(tags={"aimass/use_case": "credit_risk"}))
        assert run.status == DagsterRunStatus.SUCCESS
        materialised = {
            key.path[-1]
            for key in instance.get_asset_keys()
            if instance.get_latest_materialization_event(key) is not None
        }
        assert EXPECTED_ASSETS <= materialised
        records = instance.get_records_for_run(run.run_id).records
        checks = [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]
        evaluations = [
            e.event_specific_data for e in checks if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        names = {e.check_name for e in evaluations}
        assert {
            "check_raw_applications_schema",
            "check_clean_applications_quality",
            "check_champion_model_exists",
        } <= names
        assert any(n.startswith("unique_credit_features") for n in names)
        assert all(e.passed for e in evaluations)


def test_champion_registered_with_lineage_and_holdout_auc_above_floor(settings) -> None:
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias("credit_risk", "champion")
    assert str(champion.version) == "1"
    assert float(champion.tags["holdout.roc_auc"]) > 0.8
    run = client.get_run(champion.run_id)
    assert run.data.tags["dagster.run_id"]
    assert run.data.tags["aimass.data_batches"]
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(
        float(champion.tags["holdout.roc_auc"]), abs=1e-6
    )
    assert {"holdout_pr_auc", "holdout_brier", "train_rows"} <= set(run.data.metrics)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    model_info = mlflow.models.get_model_info(f"models:/credit_risk/{champion.version}")
    assert model_info.signature is not None
    assert set(model_info.signature.inputs.input_names()) == set(CREDIT_RISK.feature_names)
    runs = client.search_runs([run.info.experiment_id])
    families = {"logreg", "random_forest", "xgboost", "torch_mlp", "ensemble"}
    fits = [
        r for r in runs if r.data.tags.get("mlflow.parentRunId") is None and "aimass.family" in r.data.tags
    ]
    assert {r.data.tags["aimass.family"] for r in fits} == families
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert trials, "tuning trials are nested MLflow runs"
    assert client.list_artifacts(champion.run_id, "") and any(
        a.path.startswith("model_card") for a in client.list_artifacts(champion.run_id)
    )
    assert champion.tags["gate.test"] == "floor-only" and champion.tags["gate.promote"] == "true"


def test_status_reports_champion_bento_and_last_run(lifecycle_home: Path) -> None:
    report = _status(lifecycle_home)
    info = report["use_cases"]["credit_risk"]
    assert report["schema_version"] == 1 and report["environment"] == "local"
    assert info["champion"]["version"] == 1 and info["champion"]["holdout_metrics"]["roc_auc"] > 0.8
    assert info["champion"]["run_id"] and info["champion"]["registered_model"] == "credit_risk"
    assert info["bento"].startswith("credit_risk:")
    assert info["last_run"]["status"] == "SUCCESS"


def test_served_champion_answers_predict(lifecycle_home: Path, settings) -> None:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows = conn.execute("select * from credit_risk.credit_features order by application_id limit 5").df()
    records = json.loads(rows[CREDIT_RISK.feature_names].to_json(orient="records"))
    records[0]["Income"] = None
    port = free_port()
    server = subprocess.Popen(
        [AIMASS, "serve", "credit_risk", "--port", str(port)],
        env=env_for(lifecycle_home),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, "aimass serve exited early"
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.monotonic() < deadline, "the bento did not become ready in 90 s"
            time.sleep(0.5)
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        answer = requests.post(f"{base}/predict", json={"records": records}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_name"] == "credit_risk" and str(body["model_version"]) == "1"
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        model = mlflow.sklearn.load_model("models:/credit_risk@champion")
        frame = rows[CREDIT_RISK.feature_names].copy()
        frame.loc[0, "Income"] = math.nan
        expected = model.predict_proba(frame)[:, 1]
        for prediction, want in zip(body["predictions"], expected, strict=True):
            assert prediction["probability"] == pytest.approx(want, abs=1e-6)
            assert prediction["label"] == ("bad" if want >= 0.5 else "good")
        bad = requests.post(f"{base}/predict", json={"records": [{**records[1], "Salary": 10}]}, timeout=30)
        assert 400 <= bad.status_code < 500 and "Salary" in bad.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise


def test_a_second_run_on_the_same_data_registers_but_does_not_promote(lifecycle_home: Path, settings) -> None:
    """Same data, code and seed give the same model, which must not beat the champion."""
    result = subprocess.run(
        LIFECYCLE_RUN, env=env_for(lifecycle_home), cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[credit_risk] registered version 2" in result.stdout
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    v1, v2 = client.get_model_version("credit_risk", "1"), client.get_model_version("credit_risk", "2")
    assert v2.tags["gate.promote"] == "false"
    assert v1.tags["holdout.roc_auc"] == v2.tags["holdout.roc_auc"]
    assert str(client.get_model_version_by_alias("credit_risk", "champion").version) == "1"


def test_operator_promote_and_rollback_move_aliases_and_the_bento(lifecycle_home: Path, settings) -> None:
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    env = env_for(lifecycle_home)

    def aliases() -> tuple[str, str]:
        champion = client.get_model_version_by_alias("credit_risk", "champion").version
        previous = client.get_model_version_by_alias("credit_risk", "previous").version
        return str(champion), str(previous)

    promoted = subprocess.run(
        [AIMASS, "promote", "credit_risk", "2"], env=env, capture_output=True, text=True
    )
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    assert aliases() == ("2", "1")
    # The alias moves at once; the bento builds in the background (its log named on the terminal).
    assert "building in the background" in promoted.stdout, promoted.stdout
    background_log = Path(promoted.stdout.rsplit("(log: ", 1)[1].split(")")[0])
    assert client.get_model_version("credit_risk", "2").tags["promoted_by"] == "operator"
    assert _status(lifecycle_home)["use_cases"]["credit_risk"]["champion"]["version"] == 2

    rolled = subprocess.run(
        [AIMASS, "rollback", "credit_risk", "--wait"], env=env, capture_output=True, text=True
    )
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert aliases() == ("1", "2")
    assert "bento credit_risk:" in rolled.stdout
    # However the promote's background build and the rollback's interleave, the newest bento (what
    # `aimass serve` starts) serves the champion the last move left: version 1.
    deadline = time.monotonic() + 300
    while not re.search(r"^credit_risk:\w+$", background_log.read_text(), re.M):
        assert time.monotonic() < deadline, background_log.read_text()[-2000:]
        time.sleep(0.5)
    newest = latest_bento_tag(settings, "credit_risk")
    name, version = newest.split(":")
    bento_yaml = (settings.bentoml_home / "bentos" / name / version / "bento.yaml").read_text()
    assert "model_tag: credit_risk:v1" in bento_yaml, bento_yaml[-600:]

    missing = subprocess.run(
        [AIMASS, "promote", "credit_risk", "99"], env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0 and aliases() == ("1", "2")
