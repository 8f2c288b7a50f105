import json
from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.collection.ingestion.stream import ingest_file
from aimass_pipeline.collection.landing import file_sha256
from aimass_pipeline.collection.quarantine import (
    check_name,
    list_quarantined,
    quarantine,
    retry,
    retry_counts,
)
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline_tests.conftest import CREDIT_RISK


@pytest.fixture
def good_text(credit_frame: pd.DataFrame) -> str:
    return credit_frame.head(20).to_csv(index=False)


def _land(folder: Path, name: str, data: bytes | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _contract_error(path: Path) -> DataContractError:
    """What the collection asset meets for this file: its name checked, then its bytes streamed."""
    with pytest.raises(DataContractError) as caught:
        check_name(path)
        ingest_file(
            str(path),
            CREDIT_RISK,
            batch_id="b1",
            out_path=str(path.parent / ".out.parquet"),
            rejects_path=str(path.parent / ".rejects.parquet"),
        )
    assert caught.value.source
    return caught.value


def _rule(path: Path) -> str:
    return _contract_error(path).rule


def test_spaces_and_unicode_letters_in_names_are_fine(tmp_path: Path, good_text: str) -> None:
    path = _land(tmp_path, "Crédit März 2026 ✓.csv", good_text)
    check_name(path)
    report = ingest_file(
        str(path),
        CREDIT_RISK,
        batch_id="b1",
        out_path=str(tmp_path / "out.parquet"),
        rejects_path=str(tmp_path / "rejects.parquet"),
    )
    assert report.source_file == path.name and report.rows_accepted == 20


@pytest.mark.parametrize("name", ["..evil.csv", "-rf.csv", "tab\there.csv", "back\\slash.csv"])
def test_unsafe_names(tmp_path: Path, good_text: str, name: str) -> None:
    assert _rule(_land(tmp_path, name, good_text)) == "name.unsafe"


def test_a_traversal_in_the_path_is_unsafe(tmp_path: Path, good_text: str) -> None:
    (tmp_path / "landing").mkdir()
    _land(tmp_path, "escape.csv", good_text)
    # landing/../escape.csv resolves inside tmp_path: nothing is written outside the test's folder.
    assert _rule(tmp_path / "landing" / ".." / "escape.csv") == "name.unsafe"


def test_quarantine_moves_the_file_with_its_reason_and_retry_brings_it_back(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    landing, jail = tmp_path / "landing", tmp_path / "quarantine" / "credit_risk"
    bad = _land(landing, "bad batch.csv", credit_frame.head(5).drop(columns=["Age"]).to_csv(index=False))
    sha = file_sha256(bad)
    moved = quarantine(bad, _contract_error(bad), jail)
    assert not bad.exists() and moved.parent == jail and moved.name.endswith("-bad batch.csv")
    reason = json.loads(moved.with_name(moved.name + ".json").read_text())
    assert reason["file"] == "bad batch.csv" and reason["sha256"] == sha
    assert (reason["rule"], reason["column"]) == ("columns.missing", "Age")
    assert "Age" in reason["message"] and reason["rows"] == [1] and reason["quarantined_at"]
    [entry] = list_quarantined(jail)
    assert entry["quarantined_file"] == moved.name and entry["rule"] == "columns.missing"

    with pytest.raises(FileNotFoundError):
        retry(jail, "other.csv", landing)
    back = retry(jail, "bad batch.csv", landing)
    assert back == landing / "bad batch.csv" and file_sha256(back) == sha
    assert list_quarantined(jail) == [] and [p.name for p in jail.iterdir()] == [".retries.json"]
    # Each retry of the same bytes is counted: the sensor's run key for them changes with it.
    assert retry_counts(jail) == {sha: 1}
    quarantine(back, _contract_error(back), jail)
    retry(jail, "bad batch.csv", landing)
    assert retry_counts(jail) == {sha: 2} and list_quarantined(jail) == []


def test_an_unsafe_name_is_stored_safely_and_not_retried_under_it(tmp_path: Path, good_text: str) -> None:
    jail = tmp_path / "quarantine"
    bad = _land(tmp_path / "landing", "a..b.csv", good_text)
    moved = quarantine(bad, _contract_error(bad), jail)
    assert moved.parent == jail and ".." not in moved.name
    with pytest.raises(ValueError, match="cannot go back"):
        retry(jail, moved.name, tmp_path / "landing")
    assert moved.exists()


def test_parquet_and_json_lines_faults_test_ingestion_does_not_cover(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    frame = credit_frame.head(20)
    frame.drop(columns=["Age"]).to_parquet(tmp_path / "no_age.parquet", index=False)
    error = _contract_error(tmp_path / "no_age.parquet")
    assert (error.rule, error.column) == ("columns.missing", "Age")
    assert _rule(_land(tmp_path, "fake.parquet", b"a,b\n1,2\n")) == "file.parse"
    assert _rule(_land(tmp_path, "empty.jsonl", "\n")) == "file.empty"
    # A Parquet file under a .csv name is binary to a CSV reader.
    frame.to_parquet(tmp_path / "parquet.csv", index=False)
    assert _rule(tmp_path / "parquet.csv") == "file.binary"
