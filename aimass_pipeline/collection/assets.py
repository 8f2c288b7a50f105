"""Collection: landed files into the lake's immutable raw zone, and the raw table over every batch."""

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, Config, asset, asset_check

from aimass_pipeline.lib.landing import list_landed_files
from aimass_pipeline.lib.preprocessing import read_raw_batch
from aimass_pipeline.lib.validation import schema_expectations
from aimass_pipeline.quality import suite_check
from aimass_pipeline.resources import LakeResource, LandingZoneResource
from aimass_pipeline.use_case import UseCase


class LandingSelection(Config):
    """Which landed files to take in; empty means every file now in the landing zone."""

    files: list[str] = []


def build_collection(uc: UseCase) -> list:
    @asset(name=uc.raw, key_prefix=uc.name, group_name="collection", kinds={"pandas", "parquet"})
    def raw_table(
        context: AssetExecutionContext,
        config: LandingSelection,
        landing: LandingZoneResource,
        lake: LakeResource,
    ) -> pd.DataFrame:
        """Every batch in the raw zone, as text, with the file, batch and line each row came from."""
        store = lake.lake()
        folder = landing.directory(uc.name)
        landed = list_landed_files(folder)
        if config.files:
            by_name = {f.name: f for f in landed}
            unknown = [name for name in config.files if name not in by_name]
            if unknown:
                raise FileNotFoundError(f"not in the landing zone {folder}: {unknown}")
            landed = [by_name[name] for name in config.files]
        new_batches = [
            m["source_file"] for m, is_new in (store.store_raw_batch(uc.name, f) for f in landed) if is_new
        ]
        manifests = store.raw_batches(uc.name)
        if not manifests:
            raise FileNotFoundError(f"no batch in the raw zone and no file in {folder}")
        frames = [
            read_raw_batch(
                store.read_bytes("raw", uc.name, f"batch={m['batch_id']}", m["source_file"]),
                m["source_file"],
                m["batch_id"],
                uc.contract,
            )
            for m in manifests
        ]
        table = pd.concat(frames, ignore_index=True)
        context.add_output_metadata(
            {
                "dagster/row_count": len(table),
                "batches": len(manifests),
                "new_batches": new_batches,
                "batch_ids": [m["batch_id"] for m in manifests],
                "source_files": [m["source_file"] for m in manifests],
                "sha256": [m["sha256"] for m in manifests],
            }
        )
        return table

    @asset_check(
        asset=raw_table,
        name=f"check_{uc.raw}_schema",
        blocking=True,
        description="Great Expectations: the contract's schema",
    )
    def schema_check(raw_table: pd.DataFrame) -> AssetCheckResult:
        return suite_check(raw_table, f"{uc.name}_raw_schema", schema_expectations(uc.contract))

    return [raw_table, schema_check]
