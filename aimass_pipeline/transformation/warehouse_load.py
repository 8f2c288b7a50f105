"""Copy a lake table into PostgreSQL, where the prod dbt target reads its sources.

DuckDB reads the lake's Parquet in place; PostgreSQL cannot, so the pipeline loads the clean table into a
``<prefix>_<use case>_lake`` schema before ``dbt build --target prod``. Each load runs in one transaction:
readers see the old rows or the new ones, never a half-loaded table.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
import psycopg2
from psycopg2 import sql

BATCH_COLUMN = "_batch_id"


def lake_schema(prefix: str, use_case: str) -> str:
    """The schema the prod target's sources of ``use_case`` name (see dbt/models/<use case>/sources.yml)."""
    return f"{prefix}_{use_case}_lake"


@dataclass(frozen=True)
class LakeSource:
    """A dbt source the lake holds: its use case (the models folder), table name and Dagster asset key."""

    use_case: str
    table: str
    asset_key: tuple[str, ...]

    @property
    def lake_parts(self) -> tuple[str, ...]:
        """Where the lake's IO manager stores the asset (``assets/<use case>/<table>.parquet``)."""
        return ("assets", *self.asset_key[:-1], f"{self.asset_key[-1]}.parquet")


def lake_sources(manifest: Mapping, use_cases: Iterable[str]) -> list[LakeSource]:
    """The dbt sources of ``use_cases`` in a parsed dbt manifest, each mapped to the asset that writes it."""
    wanted = set(use_cases)
    found = []
    for unique_id, source in sorted(manifest["sources"].items()):
        use_case = source["fqn"][1]
        if use_case not in wanted:
            continue
        key = source.get("meta", {}).get("dagster", {}).get("asset_key")
        if not key:
            raise ValueError(
                f"dbt source {unique_id} has no meta.dagster.asset_key: the pipeline cannot tell which "
                "lake table to load into PostgreSQL for it (see dbt/models/<use case>/sources.yml)"
            )
        found.append(LakeSource(use_case, source["name"], tuple(key)))
    return found


@dataclass(frozen=True)
class LoadReport:
    """One source table loaded: ``mode`` is ``full`` (whole table replaced) or ``batch`` (one batch's rows)."""

    table: str
    mode: str
    rows_copied: int
    rows_total: int
    seconds: float
    note: str = ""

    def as_metadata(self) -> dict[str, object]:
        meta = {
            "warehouse_table": self.table,
            "load_mode": self.mode,
            "rows_copied": self.rows_copied,
            "rows_total": self.rows_total,
            "load_seconds": round(self.seconds, 3),
        }
        return {**meta, "load_note": self.note} if self.note else meta


def _pg_type(dtype: object) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    return "text"


def _columns(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(str(name), _pg_type(dtype)) for name, dtype in frame.dtypes.items()]


def _existing_columns(cur, schema: str, table: str) -> list[tuple[str, str]]:
    cur.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, table),
    )
    return cur.fetchall()


def _copy_rows(cur, target: sql.Composable, frame: pd.DataFrame) -> int:
    buffer = io.StringIO()
    # NULL as \N keeps an empty string distinct from a missing value.
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    cur.copy_expert(
        sql.SQL("copy {} from stdin with (format csv, null '\\N')").format(target).as_string(cur), buffer
    )
    return cur.rowcount


def _replace_all(cur, schema: str, table: str, frame: pd.DataFrame) -> int:
    if frame.empty:
        raise ValueError(f"refusing to replace {schema}.{table} with an empty table")
    target = sql.Identifier(schema, table)
    cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    if _existing_columns(cur, schema, table) == _columns(frame):
        # Truncate rather than drop: the staging views built on this table stay valid.
        cur.execute(sql.SQL("truncate {}").format(target))
    else:
        # A changed schema drops the dependent dbt views too; the dbt build that follows recreates them.
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in _columns(frame)
        )
        cur.execute(sql.SQL("drop table if exists {} cascade").format(target))
        cur.execute(sql.SQL("create table {} ({})").format(target, columns))
    return _copy_rows(cur, target, frame)


def copy_frame_to_postgres(
    connection: Mapping[str, object], schema: str, table: str, frame: pd.DataFrame
) -> int:
    """Replace ``schema.table`` with ``frame`` (column names kept exactly, quoted); returns rows written."""
    conn = psycopg2.connect(**connection)
    try:
        with conn, conn.cursor() as cur:
            return _replace_all(cur, schema, table, frame)
    finally:
        conn.close()


def load_lake_table(
    connection: Mapping[str, object],
    schema: str,
    table: str,
    frame: pd.DataFrame,
    *,
    key: str,
    batch_id: str = "",
) -> LoadReport:
    """Make ``schema.table`` hold exactly ``frame``, the lake's whole table.

    With ``batch_id``, and the table already there with the same columns, only that batch changes: its old
    rows and rows of other batches whose ``key`` it now holds are deleted, its rows copied. The lake lets
    the newest batch win a key, so that is the whole difference, unless a key the batch gave up falls
    back to an older batch: the row count then disagrees and the whole table is copied instead.
    """
    started = time.perf_counter()
    name = f"{schema}.{table}"
    conn = psycopg2.connect(**connection)
    try:
        with conn, conn.cursor() as cur:
            if not batch_id or _existing_columns(cur, schema, table) != _columns(frame):
                copied = _replace_all(cur, schema, table, frame)
                note = "whole table: the warehouse copy's columns differ from the lake's" if batch_id else ""
                return LoadReport(name, "full", copied, copied, time.perf_counter() - started, note)
            if key not in frame.columns or BATCH_COLUMN not in frame.columns:
                raise KeyError(f"{name}: the lake table has no {key!r} or {BATCH_COLUMN!r} column")
            rows = frame[frame[BATCH_COLUMN] == batch_id]
            target = sql.Identifier(schema, table)
            cur.execute(
                sql.SQL("delete from {} where {} = %s or {} = any(%s)").format(
                    target, sql.Identifier(BATCH_COLUMN), sql.Identifier(key)
                ),
                (batch_id, rows[key].tolist()),
            )
            copied = _copy_rows(cur, target, rows) if len(rows) else 0
            cur.execute(sql.SQL("select count(*) from {}").format(target))
            (total,) = cur.fetchone()
            if total != len(frame):
                note = f"batch copy left {total} rows, the lake table has {len(frame)}: whole table copied"
                copied = _replace_all(cur, schema, table, frame)
                return LoadReport(name, "full", copied, copied, time.perf_counter() - started, note)
            return LoadReport(name, "batch", copied, total, time.perf_counter() - started)
    finally:
        conn.close()
