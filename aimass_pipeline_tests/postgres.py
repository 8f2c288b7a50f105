"""The local PostgreSQL server the production tests run against (127.0.0.1:5432, trust auth)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


def pg_admin(sql: str) -> None:
    conn = psycopg2.connect(**PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def pg_query(db: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(**{**PG, "dbname": db}) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@contextmanager
def prod_databases() -> Iterator[dict[str, str]]:
    """Fresh Dagster, MLflow and warehouse databases, named by the variables AIMASS_ENV=prod reads; dropped
    after the block."""
    try:
        pg_admin("select 1")
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required (.ci/run starts it): {exc}")
    suffix = uuid.uuid4().hex[:10]
    names = {
        "AIMASS_PG_DAGSTER_DB": f"aimass_t_{suffix}_dagster",
        "AIMASS_PG_MLFLOW_DB": f"aimass_t_{suffix}_mlflow",
        "AIMASS_PG_WAREHOUSE_DB": f"aimass_t_{suffix}_warehouse",
    }
    for name in names.values():
        pg_admin(f'create database "{name}"')
    try:
        yield names
    finally:
        for name in names.values():
            pg_admin(f'drop database if exists "{name}" with (force)')
