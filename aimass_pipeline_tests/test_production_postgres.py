"""AIMASS_ENV=prod for real: Dagster's instance and MLflow's registry on the local PostgreSQL server."""

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.collection.sensors import landing_tick
from aimass_pipeline.core.lineage import code_version
from aimass_pipeline.core.registry import ensure_experiment, promote, register_version
from aimass_pipeline.models import get_family
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, LandingZoneResource
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.preprocessing.assets import build_preprocessing
from aimass_pipeline.settings import PROD, Settings, load_settings
from aimass_pipeline.training.tracking import log_candidate
from aimass_pipeline_tests.conftest import CREDIT_RISK, CREDIT_SPEC
from aimass_pipeline_tests.postgres import pg_query, prod_databases


@pytest.fixture
def prod_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aimass_home: Settings
) -> Iterator[Settings]:
    with prod_databases() as dbs:
        monkeypatch.setenv("AIMASS_ENV", PROD)
        monkeypatch.setenv("AIMASS_PG_USER", "postgres")
        monkeypatch.setenv("AIMASS_LAKE_URL", str(tmp_path / "lake"))
        monkeypatch.setenv("AIMASS_PG_WAREHOUSE_SCHEMA", "wh")
        for key, value in dbs.items():
            monkeypatch.setenv(key, value)
        yield load_settings(tmp_path / "prod-home").prepare()


def test_prod_switch_requires_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMASS_ENV", PROD)
    monkeypatch.delenv("AIMASS_PG_USER", raising=False)
    with pytest.raises(RuntimeError, match="AIMASS_PG_USER"):
        load_settings()
    monkeypatch.setenv("AIMASS_ENV", "staging")
    with pytest.raises(ValueError, match="AIMASS_ENV must be"):
        load_settings()


def test_prod_switch_moves_dbt_to_postgres(monkeypatch: pytest.MonkeyPatch, aimass_home: Settings) -> None:
    assert aimass_home.child_env()["AIMASS_DBT_TARGET"] == "dev"
    for name, value in {
        "AIMASS_ENV": PROD,
        "AIMASS_PG_USER": "u",
        "AIMASS_PG_HOST": "db",
        "AIMASS_PG_PORT": "5432",
        "AIMASS_PG_PASSWORD": "",
        "AIMASS_PG_DAGSTER_DB": "d",
        "AIMASS_LAKE_URL": "/lake",
        "AIMASS_PG_WAREHOUSE_DB": "wh",
        "AIMASS_PG_WAREHOUSE_SCHEMA": "Bad-Prefix",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="AIMASS_PG_WAREHOUSE_SCHEMA"):
        load_settings()
    monkeypatch.setenv("AIMASS_PG_WAREHOUSE_SCHEMA", "acme")
    env = load_settings().child_env()
    assert (env["AIMASS_DBT_TARGET"], env["AIMASS_PG_WAREHOUSE_DB"], env["AIMASS_PG_WAREHOUSE_SCHEMA"]) == (
        "prod",
        "wh",
        "acme",
    )


def test_run_events_land_in_postgres(prod_settings: Settings, credit_frame: pd.DataFrame) -> None:
    assert "postgresql+psycopg2" in (prod_settings.dagster_home / "dagster.yaml").read_text()
    assert "retry_on_asset_or_op_failure: false" in (prod_settings.dagster_home / "dagster.yaml").read_text()
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
    [(status,)] = pg_query(db, "select status from runs where run_id = %s", (result.run_id,))
    assert status == "SUCCESS"
    [(events,)] = pg_query(db, "select count(*) from event_logs where run_id = %s", (result.run_id,))
    assert events > 10
    keys = {row[0] for row in pg_query(db, "select asset_key from asset_keys")}
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
        signing_key=prod_settings.signing_key(),
        trusted_types=family.skops_trusted_types,
    )
    version = register_version(
        client, "credit_risk", model_uri, run_id, {"holdout.roc_auc": "0.9"}, "prod test"
    )
    promote(client, "credit_risk", str(version.version))
    db = os.environ["AIMASS_PG_MLFLOW_DB"]
    assert pg_query(db, "select name from registered_models") == [("credit_risk",)]
    assert pg_query(db, "select alias, version from registered_model_aliases") == [("champion", 1)]
    [(stored_run,)] = pg_query(db, "select run_id from model_versions where name = 'credit_risk'")
    assert stored_run == run_id


def _land(settings: Settings, uc: UseCase, frame: pd.DataFrame, name: str, cursor: str | None):
    landing = settings.landing_dir(uc.name)
    landing.mkdir(parents=True, exist_ok=True)
    frame.to_csv(landing / name, index=False)
    tick = landing_tick(uc, landing, LakeResource(url=settings.lake_url).lake(), cursor, settle_s=0)
    [request] = tick.requests
    return request, tick.cursor


DBT_MODELS = ("stg_credit_applications", "int_credit_applications_enriched", "credit_features")


def _run(defs, uc: UseCase, selection: list[str], request=None, batch_id: str = ""):
    run_config = {"ops": {"warehouse_models": {"config": {"batch_id": batch_id}}}} if batch_id else {}
    with DagsterInstance.get() as instance:
        if request is not None:
            instance.add_dynamic_partitions(uc.batches.name, [request.partition_key])
            run_config = {**run_config, "ops": {**run_config.get("ops", {}), **request.run_config["ops"]}}
        return defs.resolve_job_def(f"{uc.name}_lifecycle").execute_in_process(
            instance=instance,
            partition_key=request.partition_key if request is not None else None,
            run_config=run_config,
            asset_selection=[uc.key(name) for name in selection],
            raise_on_error=False,
        )


def _load_report(result) -> dict:
    [observation] = result.asset_observations_for_node("warehouse_models")
    assert observation.asset_key == AssetKey(["credit_risk", "clean_applications"])
    return {k: v.value for k, v in observation.metadata.items()}


def test_dagster_builds_dbt_on_postgres_and_rebuilds_one_batch(
    prod_settings: Settings, credit_frame: pd.DataFrame
) -> None:
    """Under AIMASS_ENV=prod, Dagster loads the lake's clean table into PostgreSQL, dbt builds the prod
    target there, training reads the model table from it; a batch rebuild copies and rebuilds that batch
    alone, and a broken row fails its dbt test as an asset check."""
    from aimass_pipeline.definitions import build_definitions

    uc = UseCase(CREDIT_SPEC)
    defs = build_definitions(prod_settings.use_case_specs())
    assert type(defs.resources["warehouse"]).__name__ == "PostgresWarehouse"
    first, cursor = _land(prod_settings, uc, credit_frame.iloc[:300], "a.csv", None)
    second, _ = _land(prod_settings, uc, credit_frame.iloc[300:600], "b.csv", cursor)
    collect = [uc.raw_batch, uc.raw, uc.clean]
    assert _run(defs, uc, collect, first).success
    result = _run(defs, uc, [*collect, *DBT_MODELS, "training_set", "frozen_holdout"], second)
    assert result.success, result.get_run_failure_event()

    db, mart = os.environ["AIMASS_PG_WAREHOUSE_DB"], "wh_credit_risk.credit_features"
    lake = LakeResource(url=prod_settings.lake_url).lake()
    clean = lake.read_parquet("assets", "credit_risk", "clean_applications.parquet")
    report = _load_report(result)
    assert report.pop("load_seconds") > 0
    assert report == {
        "warehouse_table": "wh_credit_risk_lake.clean_applications",
        "load_mode": "full",
        "rows_copied": len(clean),
        "rows_total": len(clean),
    }
    # Only the selected use case's source was copied; nothing went to DuckDB.
    schemas = {s for (s,) in pg_query(db, "select nspname from pg_namespace where nspname like %s", ("wh%",))}
    assert schemas == {"wh_credit_risk", "wh_credit_risk_lake"}
    assert not prod_settings.warehouse_path.exists()
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert "unique_stg_credit_applications_application_id" in checks
    assert "contract_ranges_stg_credit_applications" in checks
    assert "check_credit_features_contract" in checks and all(checks.values()), checks

    [(rows, batches)] = pg_query(db, f"select count(*), count(distinct batch_id) from {mart}")
    assert (rows, batches) == (len(clean), 2)
    train = result.asset_value(uc.key("training_set"))
    holdout = result.asset_value(uc.key("frozen_holdout"))
    ids = sorted(i for (i,) in pg_query(db, f"select application_id from {mart}"))
    assert sorted([*train["application_id"], *holdout["application_id"]]) == ids
    assert train["label"].dtype == "int64" and train["Amount"].dtype == "float64"

    def _mart_rows() -> pd.DataFrame:
        columns = 'application_id, "Amount", batch_id, label'
        rows = pg_query(db, f"select {columns} from {mart} order by application_id")
        return pd.DataFrame(rows, columns=["application_id", "Amount", "batch_id", "label"])

    before = _mart_rows()
    # Batch b lands again corrected: new amounts, a row withdrawn, a key of batch a re-landed in b.
    b = second.partition_key
    in_b = clean["_batch_id"] == b
    clean.loc[in_b, "Amount"] += 1
    moved = clean.loc[~in_b, "application_id"].iloc[0]
    clean.loc[clean["application_id"] == moved, ["_batch_id", "Amount"]] = [b, 777]
    withdrawn = clean.loc[in_b, "application_id"].iloc[0]
    clean = clean[clean["application_id"] != withdrawn].reset_index(drop=True)
    lake.write_parquet(clean, "assets", "credit_risk", "clean_applications.parquet")
    result = _run(defs, uc, list(DBT_MODELS), batch_id=b)
    assert result.success, result.get_run_failure_event()
    report = _load_report(result)
    assert (report["load_mode"], report["rows_copied"]) == ("batch", int((clean["_batch_id"] == b).sum()))

    after = _mart_rows()
    untouched = before[(before["batch_id"] != b) & (before["application_id"] != moved)]
    pd.testing.assert_frame_equal(
        after[after["batch_id"] != b].reset_index(drop=True), untouched.reset_index(drop=True)
    )
    rebuilt = after[after["batch_id"] == b].set_index("application_id")
    was = before[before["batch_id"] == b].set_index("application_id").drop(withdrawn)
    assert withdrawn not in rebuilt.index and rebuilt.loc[moved, "Amount"] == 777
    assert (rebuilt.loc[was.index, "Amount"] == was["Amount"] + 1).all()
    assert len(after) == len(clean)

    broken = clean.copy()
    broken.loc[broken.index[broken["_batch_id"] == b][0], "Age"] = 7
    lake.write_parquet(broken, "assets", "credit_risk", "clean_applications.parquet")
    result = _run(defs, uc, list(DBT_MODELS), batch_id=b)
    assert not result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == ["contract_ranges_stg_credit_applications"]
