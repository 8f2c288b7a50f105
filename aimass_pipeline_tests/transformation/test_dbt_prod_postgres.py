"""The dbt project's prod target on PostgreSQL: the pipeline copies the lake's clean table into PostgreSQL, dbt
builds the layers there and its tests catch a broken row."""

import uuid
from collections.abc import Iterator

import pandas as pd
import pytest

from aimass_pipeline.settings import Settings
from aimass_pipeline.transformation.warehouse_load import copy_frame_to_postgres, lake_schema, load_lake_table
from aimass_pipeline.transformation.warehouse_read import read_postgres_table
from aimass_pipeline_tests.conftest import CREDIT_RISK
from aimass_pipeline_tests.postgres import pg_env, pg_query, pg_server, scratch_database
from aimass_pipeline_tests.transformation.test_dbt_models import clean_batches, dbt


@pytest.fixture
def warehouse() -> Iterator[tuple[str, str]]:
    """A database of this test's own and a schema prefix in it."""
    with scratch_database() as dbname:
        yield dbname, f"t_dbt_{uuid.uuid4().hex[:10]}"


def test_prod_target_builds_on_postgres_and_fails_a_broken_row(
    aimass_home: Settings, credit_frame: pd.DataFrame, warehouse: tuple[str, str]
) -> None:
    dbname, warehouse_prefix = warehouse
    connection = {**pg_server(), "dbname": dbname}
    clean = clean_batches(credit_frame.head(300), CREDIT_RISK)
    source = lake_schema(warehouse_prefix, "credit_risk")
    assert copy_frame_to_postgres(connection, source, "clean_applications", clean) == 300
    env = {**pg_env(dbname), "AIMASS_PG_WAREHOUSE_SCHEMA": warehouse_prefix}
    result = dbt(aimass_home, "build", "--target", "prod", "--select", "credit_risk", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "ERROR=0" in result.stdout and "PASS=23" in result.stdout

    mart = f"{warehouse_prefix}_credit_risk.credit_features"
    rows = pg_query(
        dbname, f'select count(*), sum(label), count(distinct batch_id), sum("Amount") from {mart}'
    )[0]
    assert rows[:3] == (300, int((credit_frame.head(300)["Status"] == "bad").sum()), 2)
    assert rows[3] == pytest.approx(float(clean["Amount"].sum()))
    columns = [
        c
        for (c,) in pg_query(
            dbname,
            f"select column_name from information_schema.columns where table_schema = "
            f"'{warehouse_prefix}_credit_risk' and table_name = 'credit_features'",
        )
    ]
    assert set(CREDIT_RISK.feature_names) <= set(columns)

    broken = clean.copy()
    broken.loc[7, "Age"] = 7
    copy_frame_to_postgres(connection, source, "clean_applications", broken)
    result = dbt(aimass_home, "test", "--target", "prod", "--select", "stg_credit_applications", env=env)
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if " FAIL " in line]
    assert len(failed) == 1 and "contract_ranges_stg_credit_applications" in failed[0], result.stdout[-3000:]


def test_batch_load_mirrors_the_lake_table_and_reads_back_typed(warehouse: tuple[str, str]) -> None:
    dbname, warehouse_prefix = warehouse
    connection = {**pg_server(), "dbname": dbname}
    lake = pd.DataFrame(
        {
            "id": ["k1", "k2", "k3", "k4"],
            "note": ["a", "", None, "d"],
            "x": [1.5, float("nan"), 3.0, 4.0],
            "n": [1, 2, 3, 4],
            "_batch_id": ["b1", "b1", "b2", "b2"],
        }
    )
    schema = f"{warehouse_prefix}_uc_lake"
    report = load_lake_table(connection, schema, "t", lake, key="id", batch_id="b2")
    # Nothing to update in place yet: the whole table is copied.
    assert (report.mode, report.rows_copied) == ("full", 4)
    back = read_postgres_table(connection, schema, "t")
    assert back["note"].tolist() == ["a", "", None, "d"] and back["n"].dtype == "int64"
    pd.testing.assert_frame_equal(back.drop(columns="note"), lake.drop(columns="note"))

    # b2 lands again: k3 corrected, k1 re-landed in b2 (b1 loses it), k4 withdrawn.
    relanded = pd.DataFrame(
        {"id": ["k2", "k1", "k3"], "note": ["", "a", "c"], "x": [float("nan"), 9.0, 3.5], "n": [2, 1, 3]}
    ).assign(_batch_id=["b1", "b2", "b2"])
    report = load_lake_table(connection, schema, "t", relanded, key="id", batch_id="b2")
    assert (report.mode, report.rows_copied, report.rows_total) == ("batch", 2, 3)
    back = read_postgres_table(connection, schema, "t").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, relanded.sort_values("id").reset_index(drop=True))

    # b2 gives k1 up again and the lake's older b1 row of k1 comes back: only a whole copy restores it.
    fallback = relanded.copy()
    fallback.loc[fallback["id"] == "k1", "_batch_id"] = "b1"
    report = load_lake_table(connection, schema, "t", fallback, key="id", batch_id="b2")
    assert report.mode == "full" and "whole table copied" in report.note
    back = read_postgres_table(connection, schema, "t").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, fallback.sort_values("id").reset_index(drop=True))
    with pytest.raises(LookupError, match="no table .*missing"):
        read_postgres_table(connection, schema, "missing")
