"""Collection: landed files into the lake's immutable raw zone, and the raw table over every batch."""

from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from aimass_pipeline.lib.errors import DataContractError
from aimass_pipeline.lib.landing import LandedFile, as_csv_bytes, list_landed_files
from aimass_pipeline.lib.preprocessing import read_raw_batch
from aimass_pipeline.lib.quarantine import precheck, quarantine, quarantine_dir_for
from aimass_pipeline.lib.validation import schema_expectations
from aimass_pipeline.quality import suite_check
from aimass_pipeline.resources import LakeResource, LandingZoneResource
from aimass_pipeline.use_case import UseCase


class LandingSelection(Config):
    """Which landed files to take in; empty means every file now in the landing zone."""

    files: list[str] = []


def quarantine_dir(landing: LandingZoneResource, use_case: str) -> Path:
    return quarantine_dir_for(Path(landing.root), use_case)


def _select(folder: Path, files: list[str]) -> list[LandedFile]:
    landed = list_landed_files(folder)
    if not files:
        return landed
    by_name = {f.name: f for f in landed}
    unknown = [name for name in files if name not in by_name]
    if unknown:
        raise FileNotFoundError(f"not in the landing zone {folder}: {unknown}")
    return [by_name[name] for name in files]


def build_collection(uc: UseCase) -> list:
    quarantine_check = f"check_{uc.raw}_no_quarantine"

    @asset(
        name=uc.raw,
        key_prefix=uc.name,
        group_name="collection",
        kinds={"pandas", "parquet"},
        check_specs=[
            AssetCheckSpec(
                quarantine_check,
                asset=uc.key(uc.raw),
                blocking=False,
                description="No landed file of this run was quarantined for breaking the contract",
            )
        ],
    )
    def raw_table(
        context: AssetExecutionContext,
        config: LandingSelection,
        landing: LandingZoneResource,
        lake: LakeResource,
    ):
        """Every batch in the raw zone, as text, with the file, batch and line each row came from."""
        store = lake.lake()
        folder = landing.directory(uc.name)
        selected = _select(folder, config.files)
        stored = {m["sha256"] for m in store.raw_batches(uc.name)}
        quarantined, accepted = [], []
        for landed in selected:
            # A stored batch passed when it landed; only new bytes are checked, before the raw zone sees them.
            if landed.sha256 not in stored:
                try:
                    precheck(landed.path, uc.contract)
                except DataContractError as error:
                    moved = quarantine(landed.path, error, quarantine_dir(landing, uc.name))
                    context.log.warning(f"quarantined {landed.name} as {moved}: {error}")
                    quarantined.append({"file": landed.name, "rule": error.rule, "message": str(error)})
                    continue
            accepted.append(landed)
        new_batches = [
            m["source_file"] for m, is_new in (store.store_raw_batch(uc.name, f) for f in accepted) if is_new
        ]
        manifests = store.raw_batches(uc.name)
        if not manifests:
            if quarantined:
                raise DataContractError(
                    f"every selected file was quarantined in {quarantine_dir(landing, uc.name)} and the raw "
                    f"zone holds no batch: {[q['message'] for q in quarantined]}",
                    source=str(folder),
                    rule="collection.all_quarantined",
                )
            raise FileNotFoundError(f"no batch in the raw zone and no file in {folder}")
        frames = [
            read_raw_batch(
                as_csv_bytes(
                    m["source_file"],
                    store.read_bytes("raw", uc.name, f"batch={m['batch_id']}", m["source_file"]),
                ),
                m["source_file"],
                m["batch_id"],
                uc.contract,
            )
            for m in manifests
        ]
        table = pd.concat(frames, ignore_index=True)
        yield Output(
            table,
            metadata={
                "dagster/row_count": len(table),
                "batches": len(manifests),
                "new_batches": new_batches,
                "quarantined": MetadataValue.json(quarantined),
                "batch_ids": [m["batch_id"] for m in manifests],
                "source_files": [m["source_file"] for m in manifests],
                "sha256": [m["sha256"] for m in manifests],
            },
        )
        yield AssetCheckResult(
            check_name=quarantine_check,
            passed=not quarantined,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"quarantined {len(quarantined)} file(s): " + "; ".join(q["message"] for q in quarantined)
                if quarantined
                else f"no file quarantined of {len(selected)} selected"
            ),
            metadata={
                "quarantined": MetadataValue.json(quarantined),
                "quarantine_dir": str(quarantine_dir(landing, uc.name)),
            },
        )

    @asset_check(
        asset=raw_table,
        name=f"check_{uc.raw}_schema",
        blocking=True,
        description="Great Expectations: the contract's schema",
    )
    def schema_check(raw_table: pd.DataFrame) -> AssetCheckResult:
        return suite_check(raw_table, f"{uc.name}_raw_schema", schema_expectations(uc.contract))

    return [raw_table, schema_check]
