"""Landed CSV, JSON Lines and Parquet files as a stream of string tables holding the contract's raw columns.

Every chunk carries ``_source_row``: the editor line for CSV (header = line 1, as an editor counts;
a quoted value spanning lines shifts it), the line for JSON Lines, the 1-based record number for Parquet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from aimass_pipeline.collection.ingestion.image_archive import read_archive
from aimass_pipeline.collection.ingestion.source import (
    ARCHIVE_SUFFIXES,
    BLOCK,
    NULL_TEXT,
    Source,
    check_header,
    fail,
    find_line,
    first_bad_utf8,
    line_at,
)
from aimass_pipeline.core.contracts import Contract


def _open_csv(source: Source, contract: Contract, block: int, include: list[str] | None, bad_rows: list):
    def on_invalid_row(row: pv.InvalidRow) -> str:
        # pyarrow names no line for a row it cannot split; keep its text to find the line.
        bad_rows.append(row.text.encode("utf-8", "replace"))
        return "error"

    return pv.open_csv(
        source.fs.open_input_stream(source.path),
        read_options=pv.ReadOptions(block_size=block),
        parse_options=pv.ParseOptions(invalid_row_handler=on_invalid_row),
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(contract.raw_columns, pa.string()),
            null_values=NULL_TEXT,
            strings_can_be_null=True,
            include_columns=include,
        ),
    )


def _csv_chunks(source: Source, contract: Contract, chunk_rows: int) -> Iterator[pa.Table]:
    # Small blocks gathered into chunks: the reader's buffers grow with the block (8 MiB blocks peaked
    # at 156 MiB of Arrow memory, 1 MiB at 44) while throughput hardly changes.
    block = BLOCK
    bad_rows: list[bytes] = []
    try:
        reader = _open_csv(source, contract, block, None, bad_rows)
        if reader.schema.names != contract.raw_columns:
            check_header(source, reader.schema.names, contract)
            # Extra columns the contract allows, or the right ones in another order: read only ours.
            reader.close()
            reader = _open_csv(source, contract, block, contract.raw_columns, bad_rows)
    except pa.ArrowInvalid as exc:
        _csv_error(source, exc, bad_rows)
    line, pending, held = 2, [], 0
    try:
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            if held >= chunk_rows:
                table = pa.Table.from_batches(pending)
                while table.num_rows >= chunk_rows:
                    yield _with_rows(table.slice(0, chunk_rows), line)
                    line, table = line + chunk_rows, table.slice(chunk_rows)
                pending, held = table.to_batches(), table.num_rows
    except pa.ArrowInvalid as exc:
        _csv_error(source, exc, bad_rows)
    finally:
        reader.close()
    if held:
        yield _with_rows(pa.Table.from_batches(pending, schema=reader.schema), line)


def _csv_error(source: Source, exc: pa.ArrowInvalid, bad_rows: list[bytes]):
    text = str(exc)
    if "Empty CSV" in text:
        fail(source, "file.empty", "the file is empty")
    if "UTF8" in text:
        offset, byte = first_bad_utf8(source)
        fail(
            source,
            "file.encoding",
            f"not UTF-8 text: byte {byte:#04x} at offset {offset}",
            line=line_at(source, offset),
        )
    if "straddling" in text:
        # A value longer than a read block: no declared text may be (TextSpec caps max_chars at a quarter
        # of it, four UTF-8 bytes a character), so the row is refused by its length, not as a parse error.
        fail(
            source, "row.too_long", f"a row is longer than {BLOCK:,} bytes: a value (a text?) over the limit"
        )
    line = find_line(source, bad_rows[0]) if bad_rows else None
    fail(source, "file.parse", f"not a readable CSV: {text[:300]}", line=line)


def _with_rows(table: pa.Table, first: int) -> pa.Table:
    rows = pa.array(np.arange(first, first + table.num_rows, dtype=np.int64))
    return table.append_column("_source_row", rows)


def _as_text(table: pa.Table, source: Source, contract: Contract) -> pa.Table:
    """The contract's columns as strings (absent ones all null), whatever types the file stored."""
    columns = []
    for name in contract.raw_columns:
        if name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, pa.string()))
            continue
        column = table[name]
        try:
            columns.append(column if column.type == pa.string() else pc.cast(column, pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            fail(
                source,
                "file.parse",
                f"values of type {column.type} cannot be read as text: {exc}",
                column=name,
            )
    return pa.table(columns, names=contract.raw_columns)


def _flatten(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table.rename_columns([n.replace(".", "_") for n in table.column_names])


def _parquet_chunks(source: Source, contract: Contract, chunk_rows: int) -> Iterator[pa.Table]:
    with source.fs.open_input_file(source.path) as handle:
        try:
            parquet = pq.ParquetFile(handle)
            names = _flatten(parquet.schema_arrow.empty_table()).column_names
        except (pa.ArrowInvalid, OSError) as exc:
            fail(source, "file.parse", f"not a readable Parquet file: {exc}")
        check_header(source, names, contract, line=None)
        first = 1
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                table = _as_text(_flatten(pa.Table.from_batches([batch])), source, contract)
                yield _with_rows(table, first)
                first += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            fail(source, "file.parse", f"not a readable Parquet file: {exc}", line=first)


def _jsonl_records(source: Source) -> Iterator[tuple[int, dict]]:
    tail, line = b"", 0
    with source.fs.open_input_stream(source.path) as stream:
        while True:
            block = stream.read(BLOCK)
            lines = (tail + block).split(b"\n")
            tail = lines.pop() if block else b""
            for raw in lines:
                line += 1
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    fail(source, "file.encoding", f"not UTF-8 text: {exc}", line=line)
                except ValueError as exc:
                    fail(source, "file.parse", f"not a JSON object: {exc}", line=line)
                if not isinstance(record, dict):
                    fail(source, "file.parse", "every line must be a JSON object", line=line)
                yield line, record
            if not block:
                return


def _jsonl_chunks(source: Source, contract: Contract, chunk_rows: int) -> Iterator[pa.Table]:
    seen: set[str] = set()

    def flush(records: list[dict], lines: list[int]) -> pa.Table:
        # Nested objects become parent_child columns, the names a contract gives them.
        frame = pd.json_normalize(records, sep="_")
        unexpected = [c for c in frame.columns if c not in contract.raw_columns]
        if unexpected and not contract.extra_columns_allowed:
            at = next(
                n
                for r, n in zip(records, lines, strict=True)
                if unexpected[0] in pd.json_normalize(r, sep="_")
            )
            fail(source, "columns.unexpected", f"unexpected keys {unexpected}", line=at, column=unexpected[0])
        seen.update(frame.columns)
        text = {
            c: [None if v is None or v != v else str(v) for v in frame[c]]
            for c in contract.raw_columns
            if c in frame.columns
        }
        table = pa.table({c: pa.array(v, pa.string()) for c, v in text.items()})
        return _as_text(table, source, contract).append_column("_source_row", pa.array(lines, pa.int64()))

    records, lines = [], []
    for line, record in _jsonl_records(source):
        records.append(record)
        lines.append(line)
        if len(records) >= chunk_rows:
            yield flush(records, lines)
            records, lines = [], []
    if records:
        yield flush(records, lines)
    if not seen:
        fail(source, "file.empty", "no JSON records")
    check_header(source, sorted(seen), contract, line=None)


def read_chunks(
    source: Source,
    contract: Contract,
    chunk_rows: int,
    refused: list | None = None,
    images: list | None = None,
) -> Iterator[pa.Table]:
    """For an archive of images (ingestion.image_archive), ``refused`` collects the images refused one by
    one and ``images`` the lineage of those accepted."""
    if source.suffix in ARCHIVE_SUFFIXES:
        return read_archive(
            source, contract, [] if refused is None else refused, [] if images is None else images
        )
    if source.suffix == ".parquet":
        return _parquet_chunks(source, contract, chunk_rows)
    if source.suffix == ".jsonl":
        return _jsonl_chunks(source, contract, chunk_rows)
    return _csv_chunks(source, contract, chunk_rows)
