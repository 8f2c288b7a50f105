"""Collection: landed files into the lake's immutable raw zone, and the raw table over every batch."""

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, Config, asset, asset_check

from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.landing import list_landed_files
from aimass_pipeline.lib.preprocessing import read_raw_batch
from aimass_pipeline.lib.validation import schema_expectations
from aimass_pipeline.quality import suite_check
from aimass_pipeline.resources import LakeResource, LandingZoneResource

USE_CASE = CREDIT_RISK.use_case


class LandingSelection(Config):
    """Which landed files to take in; empty means every file now in the landing zone."""

    files: list[str] = []


@asset(key_prefix=USE_CASE, group_name="collection", kinds={"pandas", "parquet"})
def raw_applications(
    context: AssetExecutionContext, config: LandingSelection, landing: LandingZoneResource, lake: LakeResource
) -> pd.DataFrame:
    """Every batch in the raw zone, as text, with the file, batch and line each row came from."""
    store = lake.lake()
    landed = list_landed_files(landing.directory(USE_CASE))
    if config.files:
        by_name = {f.name: f for f in landed}
        unknown = [name for name in config.files if name not in by_name]
        if unknown:
            raise FileNotFoundError(f"not in the landing zone {landing.directory(USE_CASE)}: {unknown}")
        landed = [by_name[name] for name in config.files]
    new_batches = []
    for landed_file in landed:
        manifest, is_new = store.store_raw_batch(USE_CASE, landed_file)
        if is_new:
            new_batches.append(manifest["source_file"])
    manifests = store.raw_batches(USE_CASE)
    if not manifests:
        raise FileNotFoundError(f"no batch in the raw zone and no file in {landing.directory(USE_CASE)}")
    frames = []
    for manifest in manifests:
        folder = ("raw", USE_CASE, f"batch={manifest['batch_id']}", manifest["source_file"])
        frames.append(
            read_raw_batch(
                store.read_bytes(*folder), manifest["source_file"], manifest["batch_id"], CREDIT_RISK
            )
        )
    table = pd.concat(frames, ignore_index=True)
    context.add_output_metadata(
        {
            "dagster/row_count": len(table),
            "batches": len(manifests),
            "new_batches": new_batches,
            "batch_ids": [m["batch_id"] for m in manifests],
            "source_files": [m["source_file"] for m in manifests],
        }
    )
    return table


@asset_check(asset=raw_applications, blocking=True, description="Great Expectations: the contract's schema")
def check_raw_applications_schema(raw_applications: pd.DataFrame) -> AssetCheckResult:
    return suite_check(raw_applications, f"{USE_CASE}_raw_schema", schema_expectations(CREDIT_RISK))
