"""``clean_records`` for a scanned raw table: the same Arrow row rules batch by batch, then DuckDB drops
duplicates by the same two rules (an exact repeat goes, keeping its first row; of a key's rows the last
wins), in bounded memory whatever the size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aimass_pipeline.core.contracts import META_COLUMNS, Contract
from aimass_pipeline.core.row_rules import check_rows
from aimass_pipeline.core.scan import ScanTable, copy_query, duckdb_session
from aimass_pipeline.preprocessing.cleaning import CleaningReport, fail_rows

_ROW = "_rn"


def _typed_batches(raw: ScanTable, contract: Contract, target: Path) -> int:
    """Every raw batch typed and normalised into ``target`` with its row number; the first rule any row
    breaks fails the whole table, naming its file and rows, as on the frame path."""
    rows, writer = 0, None
    try:
        for batch in raw.batches([*contract.raw_columns, *META_COLUMNS]):
            text = pa.table({c: pc.cast(batch.column(c), pa.string()) for c in contract.raw_columns})
            checked = check_rows(text, contract, normalise=True)
            for violation in checked.violations:
                frame = batch.to_pandas()
                fail_rows(frame, violation.mask, violation.column, violation.rule, violation.message)
            columns = {name: values for name, values in checked.values.items()}
            columns["_batch_id"] = batch.column("_batch_id")
            columns["_source_file"] = batch.column("_source_file")
            columns[_ROW] = pa.array(np.arange(rows, rows + batch.num_rows, dtype=np.int64))
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            writer.write_table(table.cast(writer.schema))
            rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def clean_scan(raw: ScanTable, contract: Contract, workdir: Path) -> tuple[ScanTable, CleaningReport]:
    """The clean table of a scanned raw table as one Parquet file in ``workdir`` (row order kept)."""
    workdir.mkdir(parents=True, exist_ok=True)
    typed = workdir / "typed.parquet"
    report = CleaningReport(rows_in=_typed_batches(raw, contract, typed))
    content = [contract.key, contract.target, *contract.feature_names]
    columns = ", ".join(_q(c) for c in [*content, "_batch_id", "_source_file"])
    with duckdb_session(workdir) as con:
        con.execute(
            f"create temp table firsts as select * from '{typed}' qualify {_ROW} = "
            f"min({_ROW}) over (partition by {', '.join(_q(c) for c in content)})"
        )
        (kept,) = con.execute("select count(*) from firsts").fetchone()
        report.exact_duplicates = report.rows_in - kept
        latest = (
            f"select {columns} from firsts qualify {_ROW} = max({_ROW}) over (partition by {_q(contract.key)}) "
            f"order by {_ROW}"
        )
        out = copy_query(con, latest, workdir / "clean" / "table.parquet")
        report.superseded_keys = kept - out.rows
        report.rows_out = out.rows
        missing = ", ".join(f"count(*) - count({_q(c)})" for c in contract.feature_names)
        counts = con.execute(f"select {missing} from '{out.files[0]}'").fetchone()
        report.missing_by_column = {c: int(n) for c, n in zip(contract.feature_names, counts, strict=True)}
    typed.unlink(missing_ok=True)
    # The whole scratch folder goes once the IO manager has stored the clean file.
    return replace(out, owned_dir=str(workdir)), report
