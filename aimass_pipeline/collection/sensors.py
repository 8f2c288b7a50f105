"""A sensor on the landing zone: one run per new file, exactly once (cursor, run key and raw-zone check)."""

import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from aimass_pipeline.jobs import lifecycle_job
from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.landing import list_landed_files
from aimass_pipeline.resources import LakeResource, LandingZoneResource

USE_CASE = CREDIT_RISK.use_case


@sensor(
    name=f"{USE_CASE}_landing_sensor",
    job=lifecycle_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts the lifecycle for each new file in the use case's landing zone.",
)
def landing_sensor(context: SensorEvaluationContext, landing: LandingZoneResource, lake: LakeResource):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    stored = {m["sha256"] for m in lake.lake().raw_batches(USE_CASE)}
    requests = []
    for landed in list_landed_files(landing.directory(USE_CASE)):
        if landed.sha256 in seen or landed.sha256 in stored:
            seen.setdefault(landed.sha256, landed.name)
            continue
        seen[landed.sha256] = landed.name
        requests.append(
            RunRequest(
                # Dagster refuses a second run with the same key, also after a restart with a lost cursor.
                run_key=f"{USE_CASE}:{landed.sha256}",
                run_config={"ops": {f"{USE_CASE}__raw_applications": {"config": {"files": [landed.name]}}}},
                tags={
                    "aimass/use_case": USE_CASE,
                    "aimass/batch_file": landed.name,
                    "aimass/batch_id": landed.batch_id,
                },
            )
        )
    context.update_cursor(json.dumps(seen, sort_keys=True))
    if not requests:
        return SkipReason(f"no new file in {landing.directory(USE_CASE)}")
    return requests
