import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from aimass_pipeline.collection.datasets import packaged_frame
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.preprocessing.cleaning import clean_records
from aimass_pipeline.settings import Settings
from aimass_pipeline.transformation.assets import DbtBuildConfig, dbt_build_args
from aimass_pipeline.transformation.contract_schema import contract_files
from aimass_pipeline.transformation.project import DBT_DIR
from aimass_pipeline_tests.conftest import CREDIT_RISK
from aimass_pipeline_tests.raw_batches import read_raw_batch

DBT = str(Path(sys.executable).with_name("dbt"))
DIGITS = load_specs()["digits"]


def clean_batches(frame: pd.DataFrame, contract, batches: int = 2) -> pd.DataFrame:
    """The clean table preprocessing writes for ``frame`` landed as ``batches`` consecutive files."""
    size = -(-len(frame) // batches)
    raw = pd.concat(
        [
            read_raw_batch(
                frame.iloc[i * size : (i + 1) * size].to_csv(index=False).encode(),
                f"f{i}.csv",
                f"b{i}",
                contract,
            )
            for i in range(batches)
        ],
        ignore_index=True,
    )
    return clean_records(raw, contract)[0]


def write_clean(settings: Settings, use_case: str, table: str, clean: pd.DataFrame) -> None:
    Lake(settings.lake_url).write_parquet(clean, "assets", use_case, f"{table}.parquet")


def dbt(settings: Settings, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """dbt with a target path of the test's own: the checkout's target/ belongs to the Dagster code."""
    return subprocess.run(
        [
            DBT,
            *args,
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(settings.home / "dbt_target"),
        ],
        env={**settings.child_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=400,
    )


def _mart(settings: Settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql).df()


def test_layers_build_and_one_batch_rebuilds_alone(aimass_home: Settings, credit_frame: pd.DataFrame) -> None:
    credit = credit_frame.head(400)
    digits = packaged_frame(DIGITS.data.seed_source, DIGITS.contract).head(300)
    write_clean(aimass_home, "credit_risk", "clean_applications", clean_batches(credit, CREDIT_RISK))
    write_clean(aimass_home, "digits", "clean_images", clean_batches(digits, DIGITS.contract))
    result = dbt(aimass_home, "build")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "ERROR=0" in result.stdout and "PASS=45" in result.stdout

    mart = _mart(aimass_home, "select * from credit_risk.credit_features order by application_id")
    assert len(mart) == 400
    assert int(mart["label"].sum()) == int((credit["Status"] == "bad").sum())
    assert {*CREDIT_RISK.feature_names, "application_id", "label", "batch_id", "source_file"} <= set(
        mart.columns
    )
    assert sorted(mart["batch_id"].unique()) == ["b0", "b1"]
    enriched = _mart(aimass_home, "select * from credit_risk.int_credit_applications_enriched")
    zero_assets = enriched["Assets"] == 0
    assert zero_assets.any() and enriched.loc[zero_assets, "debt_to_assets"].isna().all()

    images = _mart(aimass_home, "select * from digits.images_features order by image_id")
    assert len(images) == 300 and {*DIGITS.contract.feature_names, "label", "batch_id"} <= set(images.columns)
    assert images["label"].tolist() == digits.sort_values("image_id")["digit"].astype(int).tolist()
    row_0 = [f"pixel_0_{c}" for c in range(8)]
    assert images["row_0_mean"].round(6).tolist() == images[row_0].mean(axis=1).round(6).tolist()

    # Batch b1 lands again corrected: new amounts, a row withdrawn, and a key of b0 re-landed in b1.
    clean = Lake(aimass_home.lake_url).read_parquet("assets", "credit_risk", "clean_applications.parquet")
    in_b1 = clean["_batch_id"] == "b1"
    clean.loc[in_b1, "Amount"] += 1
    moved = clean.loc[~in_b1, "application_id"].iloc[0]
    clean.loc[clean["application_id"] == moved, ["_batch_id", "Amount"]] = ["b1", 777]
    withdrawn = clean.loc[in_b1, "application_id"].iloc[0]
    clean = clean[clean["application_id"] != withdrawn]
    write_clean(aimass_home, "credit_risk", "clean_applications", clean)
    result = dbt(aimass_home, "build", "--select", "credit_risk", "--vars", json.dumps({"batch_id": "b1"}))
    assert result.returncode == 0, result.stdout[-3000:]

    after = _mart(aimass_home, "select * from credit_risk.credit_features order by application_id")
    untouched = mart[(mart["batch_id"] == "b0") & (mart["application_id"] != moved)].reset_index(drop=True)
    pd.testing.assert_frame_equal(after[after["batch_id"] == "b0"].reset_index(drop=True), untouched)
    rebuilt = after[after["batch_id"] == "b1"].set_index("application_id")
    before_b1 = mart[mart["batch_id"] == "b1"].set_index("application_id")
    assert withdrawn not in rebuilt.index and rebuilt.loc[moved, "Amount"] == 777
    common = before_b1.index.drop(withdrawn)
    assert (rebuilt.loc[common, "Amount"] == before_b1.loc[common, "Amount"] + 1).all()
    assert len(after) == 399 and after["application_id"].is_unique


def test_dbt_tests_name_each_broken_rule(aimass_home: Settings, credit_frame: pd.DataFrame) -> None:
    clean = clean_batches(credit_frame.head(100), CREDIT_RISK, batches=1)
    clean.loc[1, "application_id"] = clean.loc[0, "application_id"]
    clean.loc[3, "Age"] = 7
    clean.loc[5, "Home"] = "castle"
    write_clean(aimass_home, "credit_risk", "clean_applications", clean)
    result = dbt(aimass_home, "build", "--select", "credit_risk")
    assert result.returncode != 0
    failed = sorted(
        line.split(" FAIL ")[1].split()[1] for line in result.stdout.splitlines() if " FAIL " in line
    )
    assert failed == [
        "contract_categories_stg_credit_applications",
        "contract_ranges_stg_credit_applications",
        "unique_stg_credit_applications_application_id",
    ], result.stdout[-3000:]


def test_contract_tests_are_in_sync_with_the_specs() -> None:
    files = contract_files(load_specs())
    assert {p.parent.parent.name for p in files} == {"credit_risk", "digits"}
    for path, text in files.items():
        assert path.read_text() == text, (
            f"{path} is stale: python -m aimass_pipeline.transformation.contract_schema"
        )


def test_build_config_passes_the_batch_as_a_dbt_var() -> None:
    assert dbt_build_args(DbtBuildConfig()) == ["build"]
    args = dbt_build_args(DbtBuildConfig(batch_id=" 20261128-ab12 "))
    assert args[:2] == ["build", "--vars"] and json.loads(args[2]) == {"batch_id": "20261128-ab12"}
    assert dbt_build_args(DbtBuildConfig(full_refresh=True)) == ["build", "--full-refresh"]
