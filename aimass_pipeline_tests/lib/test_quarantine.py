import json
from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.lib.errors import DataContractError
from aimass_pipeline.lib.landing import file_sha256
from aimass_pipeline.lib.quarantine import list_quarantined, precheck, quarantine, retry
from aimass_pipeline_tests.conftest import CREDIT_RISK

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


@pytest.fixture
def good_text(credit_frame: pd.DataFrame) -> str:
    return credit_frame.head(20).to_csv(index=False)


def _land(folder: Path, name: str, data: bytes | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _rule(path: Path) -> str:
    with pytest.raises(DataContractError) as caught:
        precheck(path, CREDIT_RISK)
    assert caught.value.source
    return caught.value.rule


def test_a_good_file_passes(tmp_path: Path, good_text: str) -> None:
    precheck(_land(tmp_path, "good.csv", good_text), CREDIT_RISK)


def test_spaces_and_unicode_letters_in_names_are_fine(tmp_path: Path, good_text: str) -> None:
    precheck(_land(tmp_path, "Crédit März 2026 ✓.csv", good_text), CREDIT_RISK)


def test_malformed_csv_with_an_unbalanced_quote(tmp_path: Path, good_text: str) -> None:
    header, first, *rest = good_text.splitlines(keepends=True)
    assert _rule(_land(tmp_path, "quote.csv", header + '"' + first + "".join(rest))) == "file.parse"


def test_empty_and_header_only_files(tmp_path: Path, good_text: str) -> None:
    assert _rule(_land(tmp_path, "empty.csv", b"")) == "file.empty"
    assert _rule(_land(tmp_path, "blank.csv", b"\n  \n")) == "file.empty"
    assert _rule(_land(tmp_path, "header.csv", good_text.splitlines()[0] + "\n")) == "file.header_only"


def test_semicolons_are_not_our_delimiter(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    text = credit_frame.head(5).to_csv(index=False, sep=";")
    assert _rule(_land(tmp_path, "semi.csv", text)) == "columns.missing"


def test_missing_and_extra_columns(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    missing = credit_frame.head(5).drop(columns=["Income"]).to_csv(index=False)
    with pytest.raises(DataContractError) as caught:
        precheck(_land(tmp_path, "missing.csv", missing), CREDIT_RISK)
    assert caught.value.rule == "columns.missing" and caught.value.column == "Income"
    extra = credit_frame.head(5).assign(Comment="x").to_csv(index=False)
    assert _rule(_land(tmp_path, "extra.csv", extra)) == "columns.unexpected"


def test_non_utf8_bytes(tmp_path: Path, good_text: str) -> None:
    header, *rows = good_text.splitlines(keepends=True)
    latin1 = (header + "".join(rows)).replace("owner", "propriétaire", 1).encode("latin-1")
    assert "é".encode("latin-1") in latin1
    assert _rule(_land(tmp_path, "latin1.csv", latin1)) == "file.encoding"


def test_binary_files_named_csv(tmp_path: Path) -> None:
    assert _rule(_land(tmp_path, "image.csv", PNG)) == "file.binary"
    assert _rule(_land(tmp_path, "noise.csv", b"a,b\n\x01\x00\xff\x00garbage")) == "file.binary"


def test_wrong_types_are_caught_before_the_raw_zone(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    frame = credit_frame.head(10).astype(str)
    frame.loc[3, "Income"] = "lots"
    with pytest.raises(DataContractError) as caught:
        precheck(_land(tmp_path, "types.csv", frame.to_csv(index=False)), CREDIT_RISK)
    assert (caught.value.rule, caught.value.column, caught.value.rows) == ("type.numeric", "Income", [5])


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
    with pytest.raises(DataContractError) as caught:
        precheck(bad, CREDIT_RISK)
    moved = quarantine(bad, caught.value, jail)
    assert not bad.exists() and moved.parent == jail and moved.name.endswith("-bad batch.csv")
    reason = json.loads(moved.with_name(moved.name + ".json").read_text())
    assert reason["file"] == "bad batch.csv" and reason["sha256"] == sha
    assert (reason["rule"], reason["column"]) == ("columns.missing", "Age")
    assert "Age" in reason["message"] and reason["rows"] == [] and reason["quarantined_at"]
    [entry] = list_quarantined(jail)
    assert entry["quarantined_file"] == moved.name and entry["rule"] == "columns.missing"

    with pytest.raises(FileNotFoundError):
        retry(jail, "other.csv", landing)
    back = retry(jail, "bad batch.csv", landing)
    assert back == landing / "bad batch.csv" and file_sha256(back) == sha
    assert list_quarantined(jail) == [] and list(jail.iterdir()) == []


def test_an_unsafe_name_is_stored_safely_and_not_retried_under_it(tmp_path: Path, good_text: str) -> None:
    jail = tmp_path / "quarantine"
    bad = _land(tmp_path / "landing", "a..b.csv", good_text)
    with pytest.raises(DataContractError) as caught:
        precheck(bad, CREDIT_RISK)
    moved = quarantine(bad, caught.value, jail)
    assert moved.parent == jail and ".." not in moved.name
    with pytest.raises(ValueError, match="cannot go back"):
        retry(jail, moved.name, tmp_path / "landing")
    assert moved.exists()


def _nested_jsonl(frame: pd.DataFrame) -> str:
    # application_id arrives nested, as {"application": {"id": ...}}, and must flatten to its column.
    lines = []
    for record in frame.to_dict(orient="records"):
        record["application"] = {"id": record.pop("application_id")}
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def test_json_lines_and_parquet_meet_the_same_contract(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    frame = credit_frame.head(20)
    precheck(_land(tmp_path, "nested.jsonl", _nested_jsonl(frame)), CREDIT_RISK)
    frame.to_parquet(tmp_path / "good.parquet", index=False)
    precheck(tmp_path / "good.parquet", CREDIT_RISK)

    frame.drop(columns=["Age"]).to_parquet(tmp_path / "no_age.parquet", index=False)
    assert _rule(tmp_path / "no_age.parquet") == "columns.missing"
    assert _rule(_land(tmp_path, "fake.parquet", b"a,b\n1,2\n")) == "file.parse"
    assert _rule(_land(tmp_path, "broken.jsonl", '{"application_id": 1,\n')) == "file.parse"
    assert _rule(_land(tmp_path, "list.jsonl", "[1, 2]\n")) == "file.parse"
    assert _rule(_land(tmp_path, "empty.jsonl", "\n")) == "file.empty"
    # A Parquet file under a .csv name is binary to a CSV reader.
    (tmp_path / "good.parquet").rename(tmp_path / "parquet.csv")
    assert _rule(tmp_path / "parquet.csv") == "file.binary"
