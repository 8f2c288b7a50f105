"""`AIMASS_ENV=prod` end to end on one machine: `aimass run` with the landing zone, the lake and MLflow's
artifacts on a real S3 server, and Dagster's instance, MLflow's registry and dbt's warehouse in PostgreSQL."""

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for
from aimass_pipeline_tests.postgres import pg_query, prod_databases
from aimass_pipeline_tests.s3.seaweed import S3Server


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    with prod_databases() as names:
        yield names


@pytest.mark.timeout(600)
def test_aimass_run_in_prod_keeps_files_on_s3_and_state_in_postgres(
    s3_server: S3Server, databases: dict[str, str], tmp_path: Path
) -> None:
    prefix = f"{s3_server.bucket}/prod-topology-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    env = {
        **env_for(home),
        **s3_server.env,
        **databases,
        "AIMASS_ENV": "prod",
        "AIMASS_PG_USER": "postgres",
        # breast_cancer declares PII: prod refuses to start without the key, whichever use case runs.
        "AIMASS_PII_KEY": "prod-topology-test-key",
        "AIMASS_LANDING_URL": f"s3://{prefix}/landing",
        "AIMASS_LAKE_URL": f"s3://{prefix}/lake",
        "AIMASS_ARTIFACTS_URL": f"s3://{prefix}/mlflow",
        "MLFLOW_S3_ENDPOINT_URL": s3_server.endpoint,
    }
    run = subprocess.run(
        [AIMASS, "run", "--use-case", "credit_risk", "--max-trials", "1", "--log-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "models:/credit_risk@champion = version 1" in run.stdout

    fs = s3_server.filesystem()
    assert fs.ls(f"{prefix}/landing/credit_risk") == [f"{prefix}/landing/credit_risk/credit_risk_0001.csv"]
    [manifest_path] = fs.glob(f"{prefix}/lake/raw/credit_risk/batch=*/manifest.json")
    manifest = json.loads(fs.cat_file(manifest_path))
    assert manifest["source_file"] == "credit_risk_0001.csv"
    assert fs.glob(f"{prefix}/mlflow/credit_risk/models/*/artifacts/MLmodel"), "model artifacts are not on S3"

    dagster_db = databases["AIMASS_PG_DAGSTER_DB"]
    assert ("SUCCESS",) in pg_query(dagster_db, "select status from runs")
    mlflow_db = databases["AIMASS_PG_MLFLOW_DB"]
    assert pg_query(mlflow_db, "select alias, version from registered_model_aliases") == [("champion", 1)]
    warehouse_db = databases["AIMASS_PG_WAREHOUSE_DB"]
    [(rows, batches)] = pg_query(
        warehouse_db, "select count(*), count(distinct batch_id) from aimass_credit_risk.credit_features"
    )
    assert rows > 4000 and batches == 1
    assert not list((home / "warehouse").glob("*.duckdb")), "dbt built into DuckDB, not PostgreSQL"
