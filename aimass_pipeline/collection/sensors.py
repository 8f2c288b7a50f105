"""A sensor per use case on its landing zone (a local folder or an s3:// prefix): each new batch becomes a
dynamic partition and one run, exactly once across restarts and lost cursors (cursor, content hashes, raw
zone, run keys), and once more each time an operator retries it from quarantine."""

from dataclasses import dataclass
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from aimass_pipeline.collection.landing import (
    MAX_BATCHES_PER_TICK,
    SETTLE_S,
    Batch,
    LandingCursor,
    plan_batches,
)
from aimass_pipeline.collection.quarantine import retry_counts
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.locations import Location, locate, quarantine_location
from aimass_pipeline.orchestration.resources import LakeResource, LandingZoneResource
from aimass_pipeline.orchestration.use_case import USE_CASE_TAG, UseCase


@dataclass(frozen=True)
class LandingTick:
    requests: list[RunRequest]
    partitions: list[str]
    cursor: str


def _describe(names: list[str]) -> str:
    if not names:
        return "(already in the raw zone)"
    return names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} more)"


def run_key(uc: UseCase, batch: Batch) -> str:
    """Dagster launches at most one run per run key, also after a restart with a lost cursor; a batch
    retried from quarantine carries its attempt, so its bytes get the new run the operator asked for."""
    key = f"{uc.name}:{batch.batch_id}"
    return f"{key}:retry{batch.attempt}" if batch.attempt else key


def batch_request(uc: UseCase, batch: Batch) -> RunRequest:
    names = [m.name for m in batch.members]
    return RunRequest(
        run_key=run_key(uc, batch),
        partition_key=batch.batch_id,
        run_config={
            "ops": {
                f"{uc.name}__{uc.raw_batch}": {
                    "config": {
                        "members": [
                            {"name": m.name, "sha256": m.sha256, "size": m.size} for m in batch.members
                        ]
                    }
                }
            }
        },
        tags={
            USE_CASE_TAG: uc.name,
            "aimass/batch_id": batch.batch_id,
            "aimass/batch_files": _describe(names),
        },
    )


def landing_tick(
    uc: UseCase,
    landing_dir: Location | Path | str,
    lake: Lake,
    cursor: str | None,
    *,
    settle_s: float = SETTLE_S,
    max_batches: int = MAX_BATCHES_PER_TICK,
) -> LandingTick:
    """What one sensor tick decides: the runs to request, the partitions to add, the next cursor.
    `aimass ingest` calls it too, so scripts take files exactly as the sensor does."""
    folder = locate(landing_dir)
    stored = set(lake.stored_hashes(uc.name))
    retries = retry_counts(quarantine_location(folder.parent, uc.name))
    batches, after = plan_batches(
        folder,
        LandingCursor.from_json(cursor),
        stored,
        retries=retries,
        settle_s=settle_s,
        max_batches=max_batches,
    )
    return LandingTick(
        requests=[batch_request(uc, b) for b in batches],
        partitions=[b.batch_id for b in batches],
        cursor=after.to_json(),
    )


def build_landing_sensor(uc: UseCase, job: JobDefinition, settle_s: float = SETTLE_S):
    @sensor(
        name=f"{uc.name}_landing_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Starts the {uc.name} lifecycle for each new batch of files in its landing zone.",
    )
    def landing_sensor(context: SensorEvaluationContext, landing: LandingZoneResource, lake: LakeResource):
        folder = landing.location(uc.name)
        tick = landing_tick(uc, folder, lake.lake(), context.cursor, settle_s=settle_s)
        if not tick.requests:
            return SensorResult(
                skip_reason=SkipReason(f"no new settled file in {folder}"), cursor=tick.cursor
            )
        return SensorResult(
            run_requests=tick.requests,
            dynamic_partitions_requests=[uc.batches.build_add_request(tick.partitions)],
            cursor=tick.cursor,
        )

    return landing_sensor
