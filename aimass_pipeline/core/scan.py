"""Big tables as Parquet files read by scanning (Arrow batches, DuckDB), never loaded as one frame.

One number decides the path, the spec's ``training.max_rows``: a table with more rows is a ``ScanTable``
that stages stream or query in DuckDB; a smaller one stays a pandas DataFrame (the simple path). Stages
that need a frame of a big table take a seeded sample of ``max_rows`` rows (``frame_of``), reported in
their metadata.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 131_072
# DuckDB spills to its temp directory above this; the process then stays well under the 4 GiB goal.
DUCKDB_MEMORY = "1GB"
SCAN = "scan"
FRAME = "frame"


@dataclass(frozen=True)
class ScanTable:
    """Parquet files read in order as one table of ``rows`` rows.

    ``labels`` name each file (a partitioned asset: its partition key). ``owned_dir`` is a scratch folder
    holding the files: the IO manager stores them in the lake, then deletes it."""

    files: tuple[str, ...]
    rows: int
    labels: tuple[str, ...] = ()
    storage_options: dict = field(default_factory=dict, compare=False)
    owned_dir: str | None = None

    @classmethod
    def of_files(
        cls, files: list[str], labels: list[str] | None = None, owned_dir: str | None = None, **options
    ) -> ScanTable:
        files = [_local(f) for f in files]
        rows = 0
        for path in files:
            with _open(path, options) as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
        return cls(tuple(files), rows, tuple(labels or ()), dict(options), owned_dir)

    @property
    def columns(self) -> list[str]:
        with _open(self.files[0], self.storage_options) as handle:
            return pq.ParquetFile(handle).schema_arrow.names

    def batches(self, columns: list[str] | None = None, size: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Every row in file order, ``size`` rows at a time."""
        for path in self.files:
            with _open(path, self.storage_options) as handle:
                yield from pq.ParquetFile(handle).iter_batches(batch_size=size, columns=columns)

    def to_pandas(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole table as a frame: only for a table known to be small (tests, a sample's source)."""
        batches = list(self.batches(columns))
        if not batches:
            return pd.DataFrame(columns=columns or self.columns)
        return pa.Table.from_batches(batches).to_pandas()

    def sample(self, n: int, seed: int, columns: list[str] | None = None) -> pd.DataFrame:
        """``n`` rows drawn without replacement by a seeded generator, in table order: the same rows on every
        call, so two stages sampling the same table score the same rows."""
        if n >= self.rows:
            return self.to_pandas(columns)
        wanted = np.sort(np.random.default_rng(seed).choice(self.rows, n, replace=False))
        picked, start = [], 0
        for batch in self.batches(columns):
            end = start + batch.num_rows
            lo, hi = np.searchsorted(wanted, [start, end])
            if hi > lo:
                picked.append(batch.take(pa.array(wanted[lo:hi] - start)))
            start = end
        return pa.Table.from_batches(picked).to_pandas()

    def sql(self, con: duckdb.DuckDBPyConnection) -> str:
        """A DuckDB table expression over the files (a remote lake is read through fsspec)."""
        remote = [f for f in self.files if "://" in f]
        if remote:
            con.register_filesystem(fsspec.filesystem(remote[0].split("://")[0], **self.storage_options))
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in self.files)
        return f"read_parquet([{listed}])"

    def discard(self) -> None:
        if self.owned_dir:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


def _local(path: str) -> str:
    return path.removeprefix("file://")


def _open(path: str, options: dict):
    if "://" in path:
        return fsspec.open(path, "rb", **options).open()
    return open(path, "rb")


def parquet_rows(path: str, options: dict | None = None) -> int:
    """A Parquet file's row count from its footer, without reading a row."""
    with _open(_local(path), options or {}) as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def merge_files(table: ScanTable, target: Path) -> Path:
    """The table's files streamed into one Parquet file (a batch never holds more than a row group)."""
    with pq.ParquetWriter(target, pq.read_schema(table.files[0])) as writer:
        for batch in table.batches():
            writer.write_batch(batch)
    return target


def duckdb_connection(workdir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``workdir`` past ``DUCKDB_MEMORY`` and keeps row order."""
    workdir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
    con.execute(f"set temp_directory = '{workdir / 'spill'}'")
    con.execute("set preserve_insertion_order = true")
    return con


@contextmanager
def duckdb_session(workdir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """``duckdb_connection``, closed and its spill folder removed afterwards."""
    con = duckdb_connection(workdir)
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(workdir / "spill", ignore_errors=True)


def copy_query(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> ScanTable:
    """Write ``query``'s rows to one Parquet file (in its own owned folder) and scan it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy ({query}) to '{path}' (format parquet, row_group_size {BATCH_ROWS})")
    return ScanTable.of_files([str(path)], owned_dir=str(path.parent))


Table = pd.DataFrame | ScanTable


def rows_of(table: Table) -> int:
    return table.rows if isinstance(table, ScanTable) else len(table)


def path_of(table: Table) -> str:
    """The path a stage took, for its metadata: ``scan`` or ``frame``."""
    return SCAN if isinstance(table, ScanTable) else FRAME


def by_size(table: ScanTable, max_rows: int) -> Table:
    """The one size decision: above ``max_rows`` rows the table stays a scan, else it becomes a frame."""
    if table.rows > max_rows:
        return table
    frame = table.to_pandas()
    table.discard()
    return frame


def frame_of(table: Table, max_rows: int, seed: int, columns: list[str] | None = None) -> pd.DataFrame:
    """A frame to fit or score on: the table itself when it is one, else a seeded ``max_rows`` sample."""
    if isinstance(table, ScanTable):
        return table.sample(max_rows, seed, columns)
    return table if columns is None else table[columns]


def sample_metadata(table: Table, max_rows: int) -> dict[str, object]:
    """What a stage's figures were computed on: every row, or a declared sample of the scanned table."""
    rows = rows_of(table)
    used = min(rows, max_rows) if isinstance(table, ScanTable) else rows
    return {"read_path": path_of(table), "table_rows": rows, "rows_used": used}


def value_counts(table: Table, column: str) -> dict:
    """``column``'s values and their row counts, sorted by value, over every row (DuckDB for a scan)."""
    if not isinstance(table, ScanTable):
        counts = table[column].value_counts().sort_index()
        return {k: int(v) for k, v in counts.items()}
    con = duckdb.connect()
    try:
        found = con.execute(
            f'select "{column}", count(*) from {table.sql(con)} group by 1 order by 1'
        ).fetchall()
    finally:
        con.close()
    return {k: int(v) for k, v in found}


# How asset functions annotate a table that may be either (Dagster cannot type a Union input).
AnyTable = Any
