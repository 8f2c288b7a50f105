"""Erasure in the warehouse (DuckDB and PostgreSQL, real servers), the labels and the lake's tables."""

from pathlib import Path

import duckdb
import pandas as pd

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.privacy import stores
from aimass_pipeline_tests.postgres import pg_connect, pg_query, scratch_database

CONTRACT = load_specs()["breast_cancer"].contract
ALIAS = "ps_" + "a" * 64


def _create(cursor) -> None:
    cursor.execute("create schema breast_cancer")
    cursor.execute("create schema other")
    cursor.execute("create table breast_cancer.biopsies (sample_id varchar, mean_radius double precision)")
    cursor.execute("insert into breast_cancer.biopsies values ('bc1', 1.0), ('bc2', 2.0), ('bc3', 3.0)")
    cursor.execute("create table breast_cancer.people (patient_id varchar)")
    cursor.execute(f"insert into breast_cancer.people values ('{ALIAS}'), ('ps_other')")
    # Another use case's table with the same key is not touched.
    cursor.execute("create table other.biopsies (sample_id varchar)")
    cursor.execute("insert into other.biopsies values ('bc1')")


def test_duckdb_and_postgres_lose_the_subjects_rows_only() -> None:
    with duckdb.connect() as conn:
        _create(conn.cursor())
        removed = stores.warehouse(conn, "duckdb", CONTRACT, {"bc1", "bc3"}, ALIAS, ["breast_cancer"])
        assert {(r["location"], r["rows"]) for r in removed} == {
            ("breast_cancer.biopsies", 2),
            ("breast_cancer.people", 1),
        }
        assert conn.execute("select sample_id from breast_cancer.biopsies").fetchall() == [("bc2",)]
        assert conn.execute("select count(*) from other.biopsies").fetchone() == (1,)
    with scratch_database() as db:
        with pg_connect(db) as conn:
            _create(conn.cursor())
        with pg_connect(db) as conn:
            removed = stores.warehouse(conn, "postgres", CONTRACT, {"bc1", "bc3"}, ALIAS, ["breast_cancer"])
        assert sorted(r["rows"] for r in removed) == [1, 2]
        assert pg_query(db, "select sample_id from breast_cancer.biopsies") == [("bc2",)]
        assert pg_query(db, "select patient_id from breast_cancer.people") == [("ps_other",)]
        assert pg_query(db, "select count(*) from other.biopsies") == [(1,)]


def test_lake_tables_and_labels(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_parquet(
        pd.DataFrame({"sample_id": ["bc1", "bc2"], "patient_id": [ALIAS, "ps_x"]}),
        "assets",
        "breast_cancer",
        "raw_biopsies_batch",
        "b1.parquet",
    )
    lake.write_parquet(
        pd.DataFrame({"prediction_id": ["p1", "p2"], "inputs": [f'{{"patient_id": "{ALIAS}"}}', "{}"]}),
        "predictions",
        "breast_cancer",
        "date=2026-12-06",
        "p.parquet",
    )
    reference = pd.DataFrame({name: [0.5, 0.25] for name in CONTRACT.feature_names})
    lake.write_parquet(reference, "reference", "breast_cancer", "v1", "features.parquet")
    untouched = pd.DataFrame({"sample_id": ["bc1"]})
    lake.write_parquet(untouched, "assets", "credit_risk", "t.parquet")
    subject_row = {name: "0.25" for name in CONTRACT.feature_names} | {"patient_id": "MRN1"}
    removed, predictions = stores.lake_tables(lake, CONTRACT, {"bc1"}, ALIAS, [subject_row])
    assert predictions == {"p1"} and sorted(r["rows"] for r in removed) == [1, 1, 1]
    assert lake.read_parquet("reference", "breast_cancer", "v1", "features.parquet").equals(reference.head(1))
    assert all(r["sha256_before"] != r["sha256_after"] for r in removed)
    assert lake.read_parquet("assets", "breast_cancer", "raw_biopsies_batch", "b1.parquet")[
        "sample_id"
    ].tolist() == ["bc2"]
    assert lake.read_parquet("assets", "credit_risk", "t.parquet").equals(untouched)
    labels = tmp_path / "labels" / "breast_cancer"
    labels.mkdir(parents=True)
    pd.DataFrame({"prediction_id": ["p1", "p2"], "diagnosis": ["benign", "malignant"]}).to_csv(
        labels / "l.csv", index=False
    )
    [entry] = stores.labels(tmp_path / "labels", "breast_cancer", predictions)
    assert entry["rows"] == 1 and pd.read_csv(labels / "l.csv")["prediction_id"].tolist() == ["p2"]


def test_a_receipt_names_the_erased_subject_for_ingestion_and_detects_edits(tmp_path: Path) -> None:
    import pytest

    from aimass_pipeline.core.erasures import erased_subjects
    from aimass_pipeline.privacy.receipt import ReceiptTampered, verify, write_receipt

    lake = Lake(str(tmp_path / "lake"))
    body = {"receipt_id": "r1", "subject_pseudonym": ALIAS, "erased_at": "2026-12-06T16:00:00+00:00"}
    receipt, uri = write_receipt(lake, "breast_cancer", body | {"removed": []})
    assert uri.endswith("privacy/breast_cancer/receipts/r1.json")
    assert erased_subjects(lake, "breast_cancer") == {ALIAS: "r1"}
    verify(receipt)
    with pytest.raises(ReceiptTampered, match="r1"):
        verify(receipt | {"removed": [{"store": "lake", "rows": 0}]})
