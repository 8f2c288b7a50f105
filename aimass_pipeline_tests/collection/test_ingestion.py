import json
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

from aimass_pipeline.collection.ingestion.stream import IngestReport, ingest_file
from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.preprocessing.cleaning import clean_records
from aimass_pipeline_tests.conftest import CREDIT_RISK, ROOT
from aimass_pipeline_tests.raw_batches import read_raw_batch

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


@pytest.fixture
def credit_text(credit_frame: pd.DataFrame) -> pd.DataFrame:
    """The credit data as the text a CSV holds, so tests can put any string into any cell."""
    return credit_frame.astype(str).replace({"nan": ""})


def _land(tmp_path: Path, name: str, data: bytes | str) -> Path:
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    path = landing / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _ingest(path: Path, contract: Contract = CREDIT_RISK, **kwargs) -> IngestReport:
    lake = path.parent.parent / "lake"
    return ingest_file(
        str(path),
        contract,
        batch_id="b1",
        out_path=str(lake / "raw.parquet"),
        rejects_path=str(lake / "rejects.parquet"),
        **kwargs,
    )


def _fails(path: Path, contract: Contract = CREDIT_RISK, **kwargs) -> DataContractError:
    with pytest.raises(DataContractError) as caught:
        _ingest(path, contract, **kwargs)
    assert caught.value.source == path.name
    lake = path.parent.parent / "lake"
    # Nothing at the outputs and no temporary leftovers either.
    assert not lake.exists() or [p for p in lake.rglob("*") if p.is_file()] == []
    return caught.value


def _outputs(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    lake = path.parent.parent / "lake"
    return pd.read_parquet(lake / "raw.parquet"), pd.read_parquet(lake / "rejects.parquet")


def test_a_good_file_streams_into_the_shape_preprocessing_reads(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    data = credit_frame.to_csv(index=False)
    path = _land(tmp_path, "good batch.csv", data)
    report = _ingest(path, chunk_rows=1000)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (
        len(credit_frame),
        len(credit_frame),
        0,
    )
    assert report.bytes_read == len(data) and report.as_metadata()["reject_share"] == 0
    accepted, rejects = _outputs(path)
    expected = read_raw_batch(data.encode(), "good batch.csv", "b1", CREDIT_RISK)
    # pandas reads a missing cell as NaN, Parquet gives None: the same missing value.
    pd.testing.assert_frame_equal(accepted.fillna(np.nan), expected.fillna(np.nan), check_dtype=False)
    assert list(rejects.columns)[:5] == ["column", "rule", "message", "value", "raw"] and rejects.empty
    cleaned, _ = clean_records(accepted, CREDIT_RISK)
    assert len(cleaned) == len(credit_frame)


def test_malformed_csv_with_an_unbalanced_quote(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    header, *rows = credit_frame.head(50).to_csv(index=False).splitlines(keepends=True)
    rows[6] = '"' + rows[6]
    error = _fails(_land(tmp_path, "quote.csv", header + "".join(rows)))
    assert (error.rule, error.rows) == ("file.parse", [8])


def test_a_row_with_an_extra_field(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    header, *rows = credit_frame.head(50).to_csv(index=False).splitlines(keepends=True)
    rows[30] = rows[30].rstrip("\n") + ",surplus\n"
    error = _fails(_land(tmp_path, "ragged.csv", header + "".join(rows)))
    assert (error.rule, error.rows) == ("file.parse", [32]) and "Expected 15 columns, got 16" in str(error)


def test_empty_and_blank_files(tmp_path: Path) -> None:
    assert _fails(_land(tmp_path, "empty.csv", b"")).rule == "file.empty"
    assert _fails(_land(tmp_path, "blank.csv", b"\n  \n")).rule == "file.empty"
    assert _fails(_land(tmp_path, "empty.jsonl", b"")).rule == "file.empty"


def test_a_header_only(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    header = credit_frame.head(0).to_csv(index=False)
    assert _fails(_land(tmp_path, "header.csv", header)).rule == "file.header_only"


def test_semicolons_are_not_our_delimiter(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    error = _fails(_land(tmp_path, "semi.csv", credit_frame.head(5).to_csv(index=False, sep=";")))
    assert (error.rule, error.column, error.rows) == ("columns.missing", "application_id", [1])
    assert "delimiter must be ','" in str(error)


def test_extra_and_missing_columns(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    extra = _fails(_land(tmp_path, "extra.csv", credit_frame.head(5).assign(Comment="x").to_csv(index=False)))
    assert (extra.rule, extra.column) == ("columns.unexpected", "Comment")
    missing = _fails(
        _land(tmp_path, "missing.csv", credit_frame.head(5).drop(columns="Income").to_csv(index=False))
    )
    assert (missing.rule, missing.column) == ("columns.missing", "Income")


def test_text_in_an_int_column_rejects_the_row(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    credit_text.loc[3, "Age"] = "old"
    path = _land(tmp_path, "types.csv", credit_text.to_csv(index=False))
    report = _ingest(path)
    assert (report.rows_rejected, report.rejects_by_rule) == (1, {"type.numeric": 1})
    accepted, rejects = _outputs(path)
    [reject] = rejects.to_dict("records")
    assert (reject["_source_row"], reject["column"], reject["rule"], reject["value"]) == (
        5,
        "Age",
        "type.numeric",
        "old",
    )
    assert json.loads(reject["raw"])["application_id"] == credit_text.loc[3, "application_id"]
    assert len(accepted) == len(credit_text) - 1 and 5 not in set(accepted["_source_row"])


def test_a_whole_column_of_text_fails_the_file(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    credit_text["Income"] = "lots"
    error = _fails(_land(tmp_path, "income.csv", credit_text.to_csv(index=False)), chunk_rows=500)
    assert (error.rule, error.column, error.rows[:2]) == ("rows.reject_share", "Income", [2, 3])
    # An upper bound of the file's rows lets it fail at the first chunk instead of reading on.
    assert "500 of 500 rows read so far" in str(error)
    assert "[type.numeric] 'lots'" in str(error) and "2.00%" in str(error)


def test_out_of_range_and_fractional_values(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    credit_text.loc[0, "Age"] = "150"
    credit_text.loc[1, "Seniority"] = "-1"
    credit_text.loc[2, "Expenses"] = "35.5"
    credit_text.loc[3, "Income"] = "inf"
    path = _land(tmp_path, "range.csv", credit_text.to_csv(index=False))
    report = _ingest(path)
    assert report.rejects_by_rule == {"range.max": 1, "range.min": 1, "type.integer": 1, "type.numeric": 1}
    _, rejects = _outputs(path)
    assert rejects[["_source_row", "column", "rule"]].values.tolist() == [
        [2, "Age", "range.max"],
        [3, "Seniority", "range.min"],
        [4, "Expenses", "type.integer"],
        [5, "Income", "type.numeric"],
    ]


def test_unknown_categories_are_rejected_and_case_and_spaces_ignored(
    tmp_path: Path, credit_text: pd.DataFrame
) -> None:
    credit_text.loc[0, "Home"] = "castle"
    credit_text.loc[1, "Home"] = " OWNER "
    credit_text.loc[2, "Status"] = "Good "
    credit_text.loc[3, "Status"] = "maybe"
    credit_text.loc[4, "Records"] = ""
    path = _land(tmp_path, "categories.csv", credit_text.to_csv(index=False))
    report = _ingest(path)
    assert report.rejects_by_rule == {"category.allowed": 1, "target.allowed": 1, "not_null": 1}
    accepted, rejects = _outputs(path)
    assert sorted(rejects["_source_row"]) == [2, 5, 6]
    assert accepted.loc[accepted["_source_row"] == 3, "Home"].item() == " OWNER "


def test_duplicate_keys_within_a_file_across_chunks(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    credit_text.loc[3000, "application_id"] = credit_text.loc[10, "application_id"]
    credit_text.loc[11, "application_id"] = credit_text.loc[10, "application_id"]
    credit_text.loc[12, "application_id"] = " " + credit_text.loc[10, "application_id"]
    # A key whose first row is rejected stays free for the next row holding it.
    credit_text.loc[20, "Age"] = "x"
    credit_text.loc[21, "application_id"] = credit_text.loc[20, "application_id"]
    path = _land(tmp_path, "dups.csv", credit_text.to_csv(index=False))
    report = _ingest(path, chunk_rows=1000)
    assert report.rejects_by_rule == {"key.unique": 3, "type.numeric": 1}
    accepted, rejects = _outputs(path)
    assert rejects.loc[rejects["rule"] == "key.unique", "_source_row"].tolist() == [13, 14, 3002]
    assert accepted["application_id"].str.strip().is_unique and 23 in set(accepted["_source_row"])


def test_non_integer_keys_are_compared_as_text(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    credit_text["application_id"] = "app-" + credit_text["application_id"]
    credit_text.loc[7, "application_id"] = credit_text.loc[2, "application_id"]
    credit_text.loc[8, "application_id"] = "APP-" + credit_text.loc[8, "application_id"][4:]
    path = _land(tmp_path, "text keys.csv", credit_text.to_csv(index=False))
    assert _ingest(path, chunk_rows=1000).rejects_by_rule == {"key.unique": 1}
    assert _outputs(path)[1]["_source_row"].tolist() == [9]


def test_non_utf8_bytes(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    early = credit_text.copy()
    early.loc[2, "Home"] = "propriétaire"
    error = _fails(_land(tmp_path, "early.csv", early.to_csv(index=False).encode("latin-1")))
    assert (error.rule, error.rows) == ("file.encoding", [4])
    # Past the first bytes read up front, the CSV reader finds it; the line is still named.
    credit_text.loc[4000, "Home"] = "propriétaire"
    # Three chunks are written by then: their temporary files go too.
    error = _fails(
        _land(tmp_path, "late.csv", credit_text.to_csv(index=False).encode("latin-1")), chunk_rows=1000
    )
    assert (error.rule, error.rows) == ("file.encoding", [4002])


def test_binary_files_named_csv(tmp_path: Path) -> None:
    assert _fails(_land(tmp_path, "image.csv", PNG)).rule == "file.binary"
    assert _fails(_land(tmp_path, "noise.csv", b"a,b\n\x01\x00\xff\x00garbage")).rule == "file.binary"
    assert _fails(_land(tmp_path, "image.parquet", PNG)).rule == "file.parse"


NESTED = Contract(
    use_case="nested",
    key="id",
    target="label",
    classes=("no", "yes"),
    features=(
        Column("customer_age", "int", nullable=False, min=18, max=100),
        Column("customer_address_city", "category", categories=("paris", "rome")),
        Column("amount", "float"),
    ),
    max_reject_share=0.3,
)


def test_nested_json_lines_are_flattened(tmp_path: Path) -> None:
    records = [
        {"id": 1, "label": "yes", "customer": {"age": 30, "address": {"city": "Paris"}}, "amount": 1.5},
        {"id": 2, "label": "no", "customer": {"age": 40, "address": {"city": "rome"}}, "amount": None},
        {"id": 3, "label": "no", "customer": {"age": 12, "address": {"city": "rome"}}, "amount": 3},
        {"id": 4, "label": "yes", "customer": {"age": 50}, "amount": 2},
    ]
    lines = [json.dumps(r) for r in records]
    path = _land(tmp_path, "nested.jsonl", "\n".join([lines[0], "", *lines[1:]]) + "\n")
    report = _ingest(path, NESTED, chunk_rows=2)
    assert (report.rows_read, report.rejects_by_rule) == (4, {"range.min": 1})
    accepted, rejects = _outputs(path)
    assert accepted["_source_row"].tolist() == [1, 3, 5]
    assert accepted["customer_address_city"].tolist() == ["Paris", "rome", None]
    assert accepted["customer_age"].tolist() == ["30", "40", "50"]
    assert rejects[["_source_row", "column", "value"]].values.tolist() == [[4, "customer_age", "12"]]


def test_json_lines_that_are_not_objects(tmp_path: Path) -> None:
    good = json.dumps({"id": 1, "label": "no", "customer": {"age": 30}})
    error = _fails(_land(tmp_path, "list.jsonl", f"{good}\n[1, 2]\n"), NESTED)
    assert (error.rule, error.rows) == ("file.parse", [2])
    error = _fails(_land(tmp_path, "broken.jsonl", f"{good}\n{good}\n{{broken\n"), NESTED)
    assert (error.rule, error.rows) == ("file.parse", [3])
    extra = json.dumps({"id": 2, "label": "no", "customer": {"age": 30, "shoe": 42}})
    error = _fails(_land(tmp_path, "extra.jsonl", f"{good}\n{good}\n{extra}\n"), NESTED)
    assert (error.rule, error.column, error.rows) == ("columns.unexpected", "customer_shoe", [3])


def test_parquet_input_is_read_as_text(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    path = tmp_path / "landing" / "typed.parquet"
    path.parent.mkdir()
    credit_frame.to_parquet(path, index=False)
    report = _ingest(path, chunk_rows=1000)
    assert report.rows_accepted == len(credit_frame)
    accepted, _ = _outputs(path)
    assert accepted["_source_row"].tolist() == list(range(1, len(credit_frame) + 1))
    assert accepted.loc[0, "Income"] == "129" and accepted.loc[0, "Seniority"] == "9"
    cleaned, _ = clean_records(accepted, CREDIT_RISK)
    assert cleaned["Income"].iloc[0] == credit_frame["Income"].iloc[0]


def test_rejects_above_the_share_fail_the_file(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    # 2% of 4454 rows is 89: 90 bad rows are one too many.
    credit_text.loc[100:189, "Job"] = "astronaut"
    error = _fails(_land(tmp_path, "jobs.csv", credit_text.to_csv(index=False)), chunk_rows=1000)
    assert (error.rule, error.column, error.rows) == ("rows.reject_share", "Job", [102, 103, 104, 105, 106])
    assert "90 of 4454 rows" in str(error)
    credit_text.loc[189, "Job"] = "fixed"
    assert _ingest(_land(tmp_path, "jobs.csv", credit_text.to_csv(index=False))).rows_rejected == 89


def test_an_fsspec_filesystem_in_and_out(credit_frame: pd.DataFrame) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/landing/batch.csv", credit_frame.head(100).to_csv(index=False).encode())
    report = ingest_file(
        "memory://landing/batch.csv",
        CREDIT_RISK,
        batch_id="b1",
        out_path="memory://lake/raw/batch.parquet",
        rejects_path="memory://lake/rejects/batch.parquet",
    )
    assert report.rows_accepted == 100
    with memory.open("/lake/raw/batch.parquet", "rb") as handle:
        assert pq.read_table(handle).num_rows == 100
    assert sorted(memory.find("/lake")) == ["/lake/raw/batch.parquet", "/lake/rejects/batch.parquet"]
    memory.rm("/landing", recursive=True)
    memory.rm("/lake", recursive=True)


_MEMORY_CHILD = """
import json, sys
from pathlib import Path
import pyarrow as pa
from aimass_pipeline.collection.ingestion.stream import ingest_file
from aimass_pipeline_tests.conftest import CREDIT_RISK

def rss(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024

before = rss("VmRSS:")
report = ingest_file(sys.argv[1], CREDIT_RISK, batch_id="big", out_path=sys.argv[2], rejects_path=sys.argv[3],
                     chunk_rows=100_000)
print(json.dumps({"growth": rss("VmHWM:") - before, "arrow_peak": pa.default_memory_pool().max_memory(),
                  "accepted": report.rows_accepted}))
"""


def test_a_large_file_is_streamed_in_bounded_memory(tmp_path: Path, credit_text: pd.DataFrame) -> None:
    rows = 2_000_000
    path = tmp_path / "big.csv"
    template = pa.Table.from_pandas(credit_text, preserve_index=False)
    with pv.CSVWriter(path, template.schema, write_options=pv.WriteOptions(quoting_style="none")) as writer:
        for first in range(0, rows, len(credit_text)):
            part = template.slice(0, min(len(credit_text), rows - first))
            keys = pa.array(np.arange(first, first + part.num_rows).astype(str))
            writer.write_table(part.set_column(0, "application_id", keys))
    out = tmp_path / "big.parquet"
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(path), str(out), str(tmp_path / "rejects.parquet")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    size = path.stat().st_size
    assert size > 130 * 2**20
    assert measured["accepted"] == rows and pq.ParquetFile(out).metadata.num_rows == rows
    # Read whole, the file takes more than its size as Arrow strings (text plus offsets); streamed, less.
    assert measured["arrow_peak"] < 0.8 * size, measured
    assert measured["growth"] < 300 * 2**20, measured
