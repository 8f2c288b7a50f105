import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from aimass_pipeline.lib.lake import Lake
from aimass_pipeline.lib.preprocessing import clean_records, read_raw_batch
from aimass_pipeline.settings import Settings
from aimass_pipeline.transformation.project import DBT_DIR
from aimass_pipeline_tests.conftest import CREDIT_RISK

DBT = str(Path(sys.executable).with_name("dbt"))


def _write_clean(settings: Settings, frame: pd.DataFrame) -> None:
    raw = read_raw_batch(frame.to_csv(index=False).encode(), "t.csv", "b1", CREDIT_RISK)
    clean, _ = clean_records(raw, CREDIT_RISK)
    Lake(settings.lake_url).write_parquet(clean, "assets", "credit_risk", "clean_applications.parquet")


def _dbt_build(settings: Settings) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            DBT,
            "build",
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(settings.home / "dbt_target"),
        ],
        env=settings.child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dbt_builds_the_feature_mart_on_duckdb(aimass_home: Settings, credit_frame: pd.DataFrame) -> None:
    _write_clean(aimass_home, credit_frame.head(400))
    result = _dbt_build(aimass_home)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "PASS=13" in result.stdout
    with duckdb.connect(str(aimass_home.warehouse_path), read_only=True) as conn:
        mart = conn.execute("select * from credit_risk.credit_features").df()
    assert len(mart) == 400
    assert set(mart["label"]) == {0, 1}
    expected_bad = int((credit_frame.head(400)["Status"] == "bad").sum())
    assert int(mart["label"].sum()) == expected_bad
    assert {*CREDIT_RISK.feature_names, "application_id", "batch_id"} <= set(mart.columns)


@pytest.mark.parametrize("defect", ["duplicate_key"])
def test_dbt_tests_fail_on_a_broken_table(
    aimass_home: Settings, credit_frame: pd.DataFrame, defect: str
) -> None:
    _write_clean(aimass_home, credit_frame.head(100))
    lake = Lake(aimass_home.lake_url)
    clean = lake.read_parquet("assets", "credit_risk", "clean_applications.parquet")
    clean.loc[1, "application_id"] = clean.loc[0, "application_id"]
    lake.write_parquet(clean, "assets", "credit_risk", "clean_applications.parquet")
    result = _dbt_build(aimass_home)
    assert result.returncode != 0
    assert "unique_stg_credit_applications_application_id" in result.stdout and "FAIL" in result.stdout
