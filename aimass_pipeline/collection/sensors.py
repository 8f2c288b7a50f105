"""A sensor per use case on its landing zone: one run per new file, exactly once (cursor, run key, raw zone)."""

import json

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from aimass_pipeline.lib.landing import list_landed_files
from aimass_pipeline.resources import LakeResource, LandingZoneResource
from aimass_pipeline.use_case import UseCase


def build_landing_sensor(uc: UseCase, job: JobDefinition):
    @sensor(
        name=f"{uc.name}_landing_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Starts the {uc.name} lifecycle for each new file in its landing zone.",
    )
    def landing_sensor(context: SensorEvaluationContext, landing: LandingZoneResource, lake: LakeResource):
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        stored = {m["sha256"] for m in lake.lake().raw_batches(uc.name)}
        requests = []
        for landed in list_landed_files(landing.directory(uc.name)):
            if landed.sha256 in seen or landed.sha256 in stored:
                seen.setdefault(landed.sha256, landed.name)
                continue
            seen[landed.sha256] = landed.name
            requests.append(
                RunRequest(
                    # Dagster refuses a second run with the same key, also after a restart with a lost cursor.
                    run_key=f"{uc.name}:{landed.sha256}",
                    run_config={"ops": {f"{uc.name}__{uc.raw}": {"config": {"files": [landed.name]}}}},
                    tags={
                        "aimass/use_case": uc.name,
                        "aimass/batch_file": landed.name,
                        "aimass/batch_id": landed.batch_id,
                    },
                )
            )
        context.update_cursor(json.dumps(seen, sort_keys=True))
        if not requests:
            return SkipReason(f"no new file in {landing.directory(uc.name)}")
        return requests

    return landing_sensor
