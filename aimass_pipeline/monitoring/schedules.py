"""The schedule of each use case's monitoring job, from its spec's ``monitoring.cron``."""

from typing import TYPE_CHECKING

from dagster import DefaultScheduleStatus, ScheduleDefinition

from aimass_pipeline.orchestration.use_case import UseCase

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_monitoring_schedule(uc: UseCase, job: "UnresolvedAssetJobDefinition") -> ScheduleDefinition:
    return ScheduleDefinition(
        name=f"{uc.name}_monitoring_schedule",
        job=job,
        cron_schedule=uc.spec.monitoring.cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Monitors the {uc.name} champion on '{uc.spec.monitoring.cron}' (spec monitoring.cron).",
    )
