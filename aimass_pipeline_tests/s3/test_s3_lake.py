"""The lake on a real S3-compatible server: landing → raw zone → assets → dbt, all through s3fs."""

import json
import subprocess

import pandas as pd
import pytest

from aimass_pipeline.lib.lake import Lake
from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for
from aimass_pipeline_tests.s3.conftest import S3Server


def _lake(server: S3Server, url: str) -> Lake:
    options = {
        "key": server.env["AWS_ACCESS_KEY_ID"],
        "secret": server.env["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"endpoint_url": server.endpoint, "region_name": "us-east-1"},
    }
    return Lake(url, options)


def test_wrong_credentials_are_refused(s3_server: S3Server) -> None:
    # The gateway enforces keys: a lake test passing with any key would not prove the credentials path.
    with pytest.raises(PermissionError):
        s3_server.filesystem(secret="wrong").ls(s3_server.bucket)


def test_lifecycle_runs_on_an_s3_lake(s3_server: S3Server, tmp_path) -> None:
    url = f"s3://{s3_server.bucket}/lifecycle"
    env = {**env_for(tmp_path / "home"), **s3_server.env, "AIMASS_LAKE_URL": url}
    result = subprocess.run(
        [AIMASS, "run", "--use-case", "credit_risk", "--max-trials", "1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "champion: models:/credit_risk@champion" in result.stdout

    lake = _lake(s3_server, url)
    manifests = lake.raw_batches("credit_risk")
    assert [m["source_file"] for m in manifests] == ["credit_risk_0001.csv"]
    landed = (tmp_path / "home" / "landing" / "credit_risk" / "credit_risk_0001.csv").read_bytes()
    stored = lake.read_bytes(
        "raw", "credit_risk", f"batch={manifests[0]['batch_id']}", "credit_risk_0001.csv"
    )
    assert stored == landed

    # The clean table dbt reads, and the model table dbt built from it, are both real.
    files = lake.fs.find(lake.path("assets", "credit_risk"))
    assert any(f.endswith("clean_applications.parquet") for f in files), files
    clean = lake.read_parquet("assets", "credit_risk", "clean_applications.parquet")
    assert len(clean) > 4000

    status = subprocess.run(
        [AIMASS, "status", "--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert status.returncode == 0, status.stderr[-2000:]
    report = json.loads(status.stdout)
    assert report["use_cases"]["credit_risk"]["champion"]["version"] == 1


def test_duckdb_reads_the_s3_lake_through_s3fs(s3_server: S3Server) -> None:
    import duckdb

    lake = _lake(s3_server, f"s3://{s3_server.bucket}/duck")
    lake.write_parquet(pd.DataFrame({"x": [1, 2, 3]}), "t.parquet")
    conn = duckdb.connect()
    conn.register_filesystem(lake.fs)
    assert conn.execute(f"select sum(x) from read_parquet('{lake.uri('t.parquet')}')").fetchone() == (6,)
