"""The lake on a real S3-compatible server: landing → raw zone → assets → dbt, all through s3fs."""

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance

from aimass_pipeline.collection.landing import seed_landing_zone
from aimass_pipeline.collection.sensors import landing_tick
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.definitions import build_definitions
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC
from aimass_pipeline_tests.s3.seaweed import S3Server


def _lake(server: S3Server, url: str) -> Lake:
    return Lake(url, server.storage_options)


def test_wrong_credentials_are_refused(s3_server: S3Server) -> None:
    # The gateway enforces keys: a lake test passing with any key would not prove the credentials path.
    with pytest.raises(PermissionError):
        s3_server.filesystem(secret="wrong").ls(s3_server.bucket)


def test_landing_to_dbt_on_an_s3_lake(
    s3_server: S3Server, aimass_home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A landed file → the S3 raw zone → the clean table in S3 → dbt reading it through s3fs; the rest
    of the lifecycle reads only the warehouse, so it is left to the lifecycle tests."""
    url = f"s3://{s3_server.bucket}/lifecycle"
    for name, value in {**s3_server.env, "AIMASS_LAKE_URL": url}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings().prepare()
    uc = UseCase(CREDIT_SPEC)
    landed = seed_landing_zone(
        settings.landing_dir(uc.name), CREDIT_SPEC.contract, CREDIT_SPEC.data.seed_source
    )
    lake = _lake(s3_server, url)
    [request] = landing_tick(uc, settings.landing_dir(uc.name), lake, None, settle_s=0).requests
    defs = build_definitions(load_settings().use_case_specs())
    selection = [
        uc.key(name)
        for name in (
            uc.raw_batch,
            uc.raw,
            uc.clean,
            "stg_credit_applications",
            "int_credit_applications_enriched",
        )
    ] + [uc.key(uc.model_table)]
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(uc.batches.name, [request.partition_key])
        result = defs.resolve_job_def(f"{uc.name}_lifecycle").execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            run_config=request.run_config,
            asset_selection=selection,
        )
    assert result.success

    [manifest] = lake.raw_batches(uc.name)
    assert manifest["source_file"] == landed.name
    stored = lake.read_bytes("raw", uc.name, f"batch={manifest['batch_id']}", landed.name)
    assert stored == landed.read_bytes()
    clean = lake.read_parquet("assets", uc.name, f"{uc.clean}.parquet")
    assert len(clean) > 4000
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows, batches = conn.execute(
            f'select count(*), count(distinct batch_id) from "{uc.name}"."{uc.model_table}"'
        ).fetchone()
    assert (rows, batches) == (len(clean), 1)


def test_duckdb_reads_the_s3_lake_through_s3fs(s3_server: S3Server) -> None:
    lake = _lake(s3_server, f"s3://{s3_server.bucket}/duck")
    lake.write_parquet(pd.DataFrame({"x": [1, 2, 3]}), "t.parquet")
    conn = duckdb.connect()
    conn.register_filesystem(lake.fs)
    assert conn.execute(f"select sum(x) from read_parquet('{lake.uri('t.parquet')}')").fetchone() == (6,)
