"""LakeIOManager: nothing stored in the raw zone goes missing from training without a loud error."""

from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, materialize

from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.collection.sensors import landing_tick
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, LandingZoneResource
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC

CREDIT = UseCase(CREDIT_SPEC)
RAW_NODE = "credit_risk__raw_applications"


def _land_and_run(settings: Settings, instance: DagsterInstance, frame: pd.DataFrame, name: str):
    landing = Path(settings.landing_dir("credit_risk"))
    landing.mkdir(parents=True, exist_ok=True)
    frame.to_csv(landing / name, index=False)
    [request] = landing_tick(
        CREDIT, landing, Lake(settings.lake_url), None, settle_s=0, max_batches=50
    ).requests
    instance.add_dynamic_partitions(CREDIT.batches.name, [request.partition_key])
    lake = LakeResource(url=settings.lake_url)
    result = materialize(
        build_collection(CREDIT),
        instance=instance,
        partition_key=request.partition_key,
        run_config=request.run_config,
        raise_on_error=False,
        resources={
            "landing": LandingZoneResource(root=str(settings.landing_root)),
            "lake": lake,
            "io_manager": LakeIOManager(lake=lake),
        },
    )
    return request.partition_key, result


def test_a_stored_batch_whose_partition_output_is_gone_fails_the_run_naming_the_batch(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    with DagsterInstance.ephemeral() as instance:
        first, result = _land_and_run(aimass_home, instance, credit_frame.head(40), "first.csv")
        assert result.success
        output = Path(aimass_home.lake_url) / "assets" / "credit_risk" / "raw_applications_batch"
        (output / f"{first}.parquet").unlink()  # the raw files stay; the batch's output is lost
        second, result = _land_and_run(aimass_home, instance, credit_frame.iloc[40:70], "second.csv")
    assert first != second
    [raw] = result.asset_materializations_for_node(RAW_NODE) or [None]
    assert not result.success, (
        f"the run succeeded without batch {first}: raw table of "
        f"{raw.metadata['dagster/row_count'].value if raw else '?'} rows"
    )
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert first in message and "raw zone" in message, message


def test_a_batch_that_stored_nothing_in_the_raw_zone_is_left_out_quietly(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    """A registered batch whose files were all quarantined stored nothing: not a lost batch."""
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(CREDIT.batches.name, ["never-stored"])
        _, result = _land_and_run(aimass_home, instance, credit_frame.head(30), "only.csv")
    assert result.success
    [raw] = result.asset_materializations_for_node(RAW_NODE)
    assert raw.metadata["dagster/row_count"].value == 30
