"""The dbt project's prod target on the local PostgreSQL server: the pipeline copies the lake's clean table
into PostgreSQL, dbt builds the layers there and its tests catch a broken row."""

import uuid
from collections.abc import Iterator

import pandas as pd
import psycopg2
import pytest

from aimass_pipeline.lib.warehouse_load import copy_frame_to_postgres, lake_schema
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import CREDIT_RISK
from aimass_pipeline_tests.transformation.test_dbt_models import clean_batches, dbt

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}


def _query(sql: str) -> list[tuple]:
    with psycopg2.connect(**PG) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.fixture
def warehouse_prefix() -> Iterator[str]:
    """A schema prefix of this test's own in the shared ``test`` database, dropped afterwards."""
    try:
        _query("select 1")
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required (.ci/run starts it): {exc}")
    prefix = f"t_dbt_{uuid.uuid4().hex[:10]}"
    yield prefix
    conn = psycopg2.connect(**PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select nspname from pg_namespace where nspname like %s", (f"{prefix}%",))
            for (schema,) in cur.fetchall():
                cur.execute(f'drop schema "{schema}" cascade')
    finally:
        conn.close()


def test_prod_target_builds_on_postgres_and_fails_a_broken_row(
    aimass_home: Settings, credit_frame: pd.DataFrame, warehouse_prefix: str
) -> None:
    clean = clean_batches(credit_frame.head(300), CREDIT_RISK)
    source = lake_schema(warehouse_prefix, "credit_risk")
    assert copy_frame_to_postgres(PG, source, "clean_applications", clean) == 300
    env = {
        "AIMASS_PG_HOST": PG["host"],
        "AIMASS_PG_PORT": str(PG["port"]),
        "AIMASS_PG_USER": PG["user"],
        "AIMASS_PG_WAREHOUSE_DB": PG["dbname"],
        "AIMASS_PG_WAREHOUSE_SCHEMA": warehouse_prefix,
    }
    result = dbt(aimass_home, "build", "--target", "prod", "--select", "credit_risk", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "ERROR=0" in result.stdout and "PASS=26" in result.stdout

    mart = f"{warehouse_prefix}_credit_risk.credit_features"
    rows = _query(f'select count(*), sum(label), count(distinct batch_id), sum("Amount") from {mart}')[0]
    assert rows[:3] == (300, int((credit_frame.head(300)["Status"] == "bad").sum()), 2)
    assert rows[3] == pytest.approx(float(clean["Amount"].sum()))
    columns = [
        c
        for (c,) in _query(
            f"select column_name from information_schema.columns where table_schema = "
            f"'{warehouse_prefix}_credit_risk' and table_name = 'credit_features'"
        )
    ]
    assert set(CREDIT_RISK.feature_names) <= set(columns)

    broken = clean.copy()
    broken.loc[7, "Age"] = 7
    copy_frame_to_postgres(PG, source, "clean_applications", broken)
    result = dbt(aimass_home, "test", "--target", "prod", "--select", "stg_credit_applications", env=env)
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if " FAIL " in line]
    assert len(failed) == 1 and "contract_ranges_stg_credit_applications" in failed[0], result.stdout[-3000:]
