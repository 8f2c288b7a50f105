"""Collection: each landed batch into the lake's immutable raw zone (a partition per batch), and the raw
table over every batch."""

import shutil
import tempfile
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    Config,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from aimass_pipeline.collection.batch_table import batch_table, stored_table, validated_batch
from aimass_pipeline.collection.landing import LandedFile, landed_file
from aimass_pipeline.collection.protection import protection
from aimass_pipeline.collection.quarantine import check_name, quarantine, quarantine_member
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.lake import members
from aimass_pipeline.core.locations import Location
from aimass_pipeline.core.scan import AnyTable, ScanTable, frame_of, path_of, rows_of
from aimass_pipeline.core.validation import schema_expectations
from aimass_pipeline.orchestration.checks import suite_check
from aimass_pipeline.orchestration.resources import LakeResource, LandingZoneResource
from aimass_pipeline.orchestration.use_case import UseCase


class LandedMember(Config):
    name: str
    sha256: str
    size: int


class BatchFiles(Config):
    """The landed files of this batch as the sensor hashed them; empty for a batch the raw zone holds."""

    members: list[LandedMember] = []


def _rejects_markdown(rejects: pd.DataFrame, limit: int = 20) -> str:
    if rejects.empty:
        return "no row rejected"
    lines = ["| file | line | column | rule | value |", "|---|---|---|---|---|"]
    for row in rejects.head(limit).to_dict("records"):
        lines.append(
            f"| {row['_source_file']} | {row['_source_row']} | {row['column']} | {row['rule']} | {row['value']} |"
        )
    more = f"\n\n… and {len(rejects) - limit} more" if len(rejects) > limit else ""
    return "\n".join(lines) + more


def _landed(folder: Location, config: BatchFiles, batch_id: str) -> list[LandedFile]:
    if not config.members:
        raise FileNotFoundError(
            f"batch {batch_id} is not in the raw zone and the run names no landed file for it: a new batch "
            "starts from the landing sensor or `aimass ingest`, which pass its files in the run config"
        )
    for member in config.members:
        if Path(member.name).name != member.name or member.name in ("", ".", ".."):
            raise ValueError(f"batch {batch_id}: {member.name!r} is not a file name in {folder}")
    return [landed_file(folder, m.name, m.sha256, m.size) for m in config.members]


def build_collection(uc: UseCase) -> list:
    quarantine_check = uc.quarantine_check

    @asset(
        name=uc.raw_batch,
        key_prefix=uc.name,
        group_name="collection",
        partitions_def=uc.batches,
        kinds={"pandas", "parquet"},
        check_specs=[
            # Not blocking: a bad file must not hold back the good files grouped with it, which flow on in
            # this run; the failed check (ERROR) and the quarantine show what was set aside.
            AssetCheckSpec(
                quarantine_check,
                asset=uc.key(uc.raw_batch),
                blocking=False,
                description="No landed file of this batch was quarantined for breaking the contract",
            )
        ],
    )
    def raw_batch(
        context: AssetExecutionContext, config: BatchFiles, landing: LandingZoneResource, lake: LakeResource
    ):
        """One landed batch: its files copied into the raw zone, then parsed as text with the file, batch
        and line each row came from. A file breaking the contract goes to quarantine instead."""
        batch_id = context.partition_key
        store = lake.lake()
        folder, jail = landing.location(uc.name), landing.quarantine(uc.name)
        manifest = store.raw_manifest(uc.name, batch_id)
        quarantined: list[dict] = []
        duplicates: list[str] = []
        newly_stored = manifest is None
        max_rows = uc.spec.training.max_rows
        guard = protection(store, uc.contract)
        if manifest is None:
            elsewhere = store.stored_hashes(uc.name)
            workdir = Path(tempfile.mkdtemp(prefix="aimass-ingest-"))
            files, accepted, rejected, reports, images = [], [], [], [], []
            for landed in _landed(folder, config, batch_id):
                if landed.sha256 in elsewhere:
                    # Grouped again after a lost cursor: the raw zone keeps each content once.
                    duplicates.append(f"{landed.name} (in batch {elsewhere[landed.sha256]})")
                    continue
                try:
                    check_name(landed.path)
                    validated = validated_batch(
                        landed.source().url(),
                        batch_id,
                        uc.contract,
                        workdir,
                        folder.storage_options or None,
                        guard,
                    )
                except DataContractError as error:
                    moved = quarantine(landed.source(), error, jail)
                    context.log.warning(f"quarantined {landed.name} as {moved}: {error}")
                    quarantined.append({"file": landed.name, "rule": error.rule, "message": str(error)})
                    continue
                for member in validated.report.refused:
                    moved = quarantine_member(member, jail)
                    context.log.warning(
                        f"quarantined {member.archive}!{member.member} as {moved}: {member.message}"
                    )
                    quarantined.append(member.as_metadata())
                images.extend(validated.report.images)
                files.append(validated.accepted)
                rejected.append(validated.rejects)
                reports.append(validated.report.as_metadata())
                accepted.append(landed)
            if quarantined and not accepted:
                shutil.rmtree(workdir, ignore_errors=True)
                raise DataContractError(
                    f"every file of batch {batch_id} was quarantined in {jail}: "
                    + "; ".join(q["message"] for q in quarantined),
                    source=", ".join(q["file"] for q in quarantined),
                    rule="collection.all_quarantined",
                )
            manifest, newly_stored = store.store_raw_batch(uc.name, batch_id, accepted, guard.raw_key)
            if images:  # each image's lineage: key -> the archive and its member's sha256
                store.write_parquet(
                    pd.DataFrame(images), "images", uc.name, f"batch={batch_id}", "images.parquet"
                )
            table = batch_table(files, uc.contract, workdir, max_rows)
            rejects = pd.concat(rejected, ignore_index=True) if rejected else pd.DataFrame()
            if not rejects.empty:
                # Beside the raw zone, never in it: the raw zone holds the landed bytes as they came.
                store.write_parquet(rejects, "rejects", uc.name, f"batch={batch_id}", "rejects.parquet")
        else:
            table = stored_table(store, uc.name, manifest, uc.contract, max_rows, guard)
            rejects, reports = pd.DataFrame(), []
        stored = members(manifest)
        yield Output(
            table,
            metadata={
                "dagster/row_count": rows_of(table),
                "read_path": path_of(table),
                "batch_id": batch_id,
                "newly_stored": newly_stored,
                "ingested_order": manifest["ingested_order"],
                "source_files": [m["source_file"] for m in stored],
                "sha256": [m["sha256"] for m in stored],
                "already_stored_elsewhere": duplicates,
                "quarantined": MetadataValue.json(quarantined),
                "rows_rejected": len(rejects),
                "rejects": MetadataValue.md(_rejects_markdown(rejects)),
                "ingestion": MetadataValue.json(reports),
            },
        )
        yield AssetCheckResult(
            check_name=quarantine_check,
            passed=not quarantined,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"quarantined {len(quarantined)} file(s): " + "; ".join(q["message"] for q in quarantined)
                if quarantined
                else f"no file quarantined of {len(stored)} in the batch"
            ),
            metadata={"quarantined": MetadataValue.json(quarantined), "quarantine_dir": str(jail)},
        )

    @asset(
        name=uc.raw,
        key_prefix=uc.name,
        group_name="collection",
        kinds={"pandas", "parquet"},
        ins={"batches": AssetIn(key=uc.key(uc.raw_batch))},
    )
    def raw_table(batches: AnyTable, lake: LakeResource) -> Output:
        """Every stored batch as one text table, in the order the batches entered the raw zone; over the
        spec's training.max_rows rows, a scan of the stored batch files in that order (nothing copied)."""
        manifests = lake.lake().raw_batches(uc.name)
        order = {m["batch_id"]: m["ingested_order"] for m in manifests}
        scanned = isinstance(batches, ScanTable)
        present = set(batches.labels) if scanned else set(batches["_batch_id"])
        unknown = sorted(present - set(order))
        if unknown:
            raise RuntimeError(f"batch partitions {unknown} are stored but not in the raw zone of {uc.name}")
        if rows_of(batches) == 0:
            raise FileNotFoundError(f"the stored batches of {uc.name} hold no row: {sorted(order)}")
        if scanned:
            ranked = sorted(zip(batches.labels, batches.files, strict=True), key=lambda pair: order[pair[0]])
            table = ScanTable(
                tuple(f for _, f in ranked),
                batches.rows,
                tuple(b for b, _ in ranked),
                batches.storage_options,
            )
        else:
            table = (
                batches.assign(_order=batches["_batch_id"].map(order))
                .sort_values("_order", kind="stable")
                .drop(columns="_order")
                .reset_index(drop=True)
            )
        loaded = [m for m in manifests if m["batch_id"] in present]
        return Output(
            table,
            metadata={
                "dagster/row_count": rows_of(table),
                "read_path": path_of(table),
                "batches": len(loaded),
                "batch_ids": [m["batch_id"] for m in loaded],
                "source_files": [f["source_file"] for m in loaded for f in members(m)],
                "sha256": [f["sha256"] for m in loaded for f in members(m)],
            },
        )

    @asset_check(
        asset=raw_table,
        name=f"check_{uc.raw}_schema",
        blocking=True,
        description="Great Expectations: the contract's schema",
    )
    def schema_check(raw_table: AnyTable) -> AssetCheckResult:
        # A scanned table is validated on a seeded sample of training.max_rows rows (see README).
        sample = frame_of(raw_table, uc.spec.training.max_rows, uc.spec.seed)
        return suite_check(sample, f"{uc.name}_raw_schema", schema_expectations(uc.contract))

    return [raw_batch, raw_table, schema_check]
