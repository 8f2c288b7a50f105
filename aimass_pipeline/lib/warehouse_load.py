"""Copy a lake table into PostgreSQL, where the prod dbt target reads its sources.

DuckDB reads the lake's Parquet in place; PostgreSQL cannot, so the pipeline loads the clean table into a
``<prefix>_<use case>_lake`` schema before ``dbt build --target prod``. The copy replaces the table in one
transaction: readers see the old rows or the new ones, never a half-loaded table.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import pandas as pd
import psycopg2
from psycopg2 import sql


def lake_schema(prefix: str, use_case: str) -> str:
    """The schema the prod target's sources of ``use_case`` name (see dbt/models/<use case>/sources.yml)."""
    return f"{prefix}_{use_case}_lake"


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


def copy_frame_to_postgres(
    connection: Mapping[str, object], schema: str, table: str, frame: pd.DataFrame
) -> int:
    """Replace ``schema.table`` with ``frame`` (column names kept exactly, quoted); returns rows written."""
    if frame.empty:
        raise ValueError(f"refusing to replace {schema}.{table} with an empty table")
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(str(name)), sql.SQL(_pg_type(dtype)))
        for name, dtype in frame.dtypes.items()
    )
    wanted = [(str(name), _pg_type(dtype)) for name, dtype in frame.dtypes.items()]
    target = sql.Identifier(schema, table)
    buffer = io.StringIO()
    # NULL as \N keeps an empty string distinct from a missing value.
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    conn = psycopg2.connect(**connection)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
            cur.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position",
                (schema, table),
            )
            existing = cur.fetchall()
            if existing == wanted:
                # Truncate rather than drop: the staging views built on this table stay valid.
                cur.execute(sql.SQL("truncate {}").format(target))
            else:
                # A changed schema drops the dependent dbt views too; the dbt build that follows recreates them.
                cur.execute(sql.SQL("drop table if exists {} cascade").format(target))
                cur.execute(sql.SQL("create table {} ({})").format(target, columns))
            cur.copy_expert(
                sql.SQL("copy {} from stdin with (format csv, null '\\N')").format(target).as_string(cur),
                buffer,
            )
            return cur.rowcount
    finally:
        conn.close()
