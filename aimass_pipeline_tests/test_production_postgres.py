"""AIMASS_ENV=prod for real: Dagster's instance and MLflow's registry on the local PostgreSQL server."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import psycopg2
import pytest
from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.collection.sensors import landing_tick
from aimass_pipeline.lib.lineage import code_version
from aimass_pipeline.lib.models import get_family
from aimass_pipeline.lib.registry import ensure_experiment, log_candidate, promote, register_version
from aimass_pipeline.preprocessing.assets import build_preprocessing
from aimass_pipeline.resources import LakeIOManager, LakeResource, LandingZoneResource
from aimass_pipeline.settings import PROD, Settings, load_settings
from aimass_pipeline.use_case import UseCase
from aimass_pipeline_tests.conftest import CREDIT_RISK, CREDIT_SPEC

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


def _admin(sql: str) -> None:
    conn = psycopg2.connect(**PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _query(db: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(**{**PG, "dbname": db}) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@pytest.fixture
def prod_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aimass_home: Settings
) -> Iterator[Settings]:
    try:
        _admin("select 1")
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required (.ci/run starts it): {exc}")
    suffix = uuid.uuid4().hex[:10]
    dbs = {
        "AIMASS_PG_DAGSTER_DB": f"aimass_t_{suffix}_dagster",
        "AIMASS_PG_MLFLOW_DB": f"aimass_t_{suffix}_mlflow",
    }
    for name in dbs.values():
        _admin(f'create database "{name}"')
    monkeypatch.setenv("AIMASS_ENV", PROD)
    monkeypatch.setenv("AIMASS_PG_USER", "postgres")
    monkeypatch.setenv("AIMASS_LAKE_URL", str(tmp_path / "lake"))
    for key, value in dbs.items():
        monkeypatch.setenv(key, value)
    try:
        yield load_settings(tmp_path / "prod-home").prepare()
    finally:
        for name in dbs.values():
            _admin(f'drop database if exists "{name}" with (force)')


def test_prod_switch_requires_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMASS_ENV", PROD)
    monkeypatch.delenv("AIMASS_PG_USER", raising=False)
    with pytest.raises(RuntimeError, match="AIMASS_PG_USER"):
        load_settings()
    monkeypatch.setenv("AIMASS_ENV", "staging")
    with pytest.raises(ValueError, match="AIMASS_ENV must be"):
        load_settings()


def test_run_events_land_in_postgres(prod_settings: Settings, credit_frame: pd.DataFrame) -> None:
    assert "postgresql+psycopg2" in (prod_settings.dagster_home / "dagster.yaml").read_text()
    landing = prod_settings.landing_dir("credit_risk")
    landing.mkdir(parents=True)
    credit_frame.head(300).to_csv(landing / "prod_batch.csv", index=False)
    lake = LakeResource(url=prod_settings.lake_url)
    uc = UseCase(CREDIT_SPEC)
    [request] = landing_tick(uc, landing, lake.lake(), None, settle_s=0).requests
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions(uc.batches.name, [request.partition_key])
        result = materialize(
            [*build_collection(uc), *build_preprocessing(uc)],
            instance=instance,
            partition_key=request.partition_key,
            run_config=request.run_config,
            resources={
                "landing": LandingZoneResource(root=str(prod_settings.landing_root)),
                "lake": lake,
                "io_manager": LakeIOManager(lake=lake),
            },
        )
    assert result.success
    db = os.environ["AIMASS_PG_DAGSTER_DB"]
    [(status,)] = _query(db, "select status from runs where run_id = %s", (result.run_id,))
    assert status == "SUCCESS"
    [(events,)] = _query(db, "select count(*) from event_logs where run_id = %s", (result.run_id,))
    assert events > 10
    keys = {row[0] for row in _query(db, "select asset_key from asset_keys")}
    assert any("clean_applications" in k for k in keys)


def test_registry_lands_in_postgres(prod_settings: Settings, credit_frame: pd.DataFrame) -> None:
    frame = credit_frame.head(300).copy()
    uc = UseCase(CREDIT_SPEC)
    features = frame[CREDIT_RISK.feature_names]
    family = get_family("logreg")
    model = family.build(uc.layout, 2, {}, 42).fit(features, CREDIT_RISK.encode_target(frame["Status"]))
    client = MlflowClient(tracking_uri=prod_settings.mlflow_tracking_uri)
    mlflow.set_tracking_uri(prod_settings.mlflow_tracking_uri)
    experiment_id = ensure_experiment(client, "credit_risk", prod_settings.mlflow_artifacts_uri)
    run_id, model_uri = log_candidate(
        experiment_id=experiment_id,
        run_name="prod-test",
        model=model,
        params={"C": 1.0},
        metrics={"train_rows": float(len(frame))},
        example=features.head(5),
        tags={"aimass.use_case": "credit_risk"},
        code_version=code_version(),
        trusted_types=family.skops_trusted_types,
    )
    version = register_version(
        client, "credit_risk", model_uri, run_id, {"holdout.roc_auc": "0.9"}, "prod test"
    )
    promote(client, "credit_risk", str(version.version))
    db = os.environ["AIMASS_PG_MLFLOW_DB"]
    assert _query(db, "select name from registered_models") == [("credit_risk",)]
    assert _query(db, "select alias, version from registered_model_aliases") == [("champion", 1)]
    [(stored_run,)] = _query(db, "select run_id from model_versions where name = 'credit_risk'")
    assert stored_run == run_id
