"""The monitoring job of each use case and the schedule from its spec's ``monitoring.cron``."""

from typing import TYPE_CHECKING

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
)

from aimass_pipeline.monitoring.assets import GROUP
from aimass_pipeline.use_case import UseCase

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def monitoring_job_name(uc: UseCase) -> str:
    return f"{uc.name}_monitoring"


def build_monitoring_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    return define_asset_job(
        name=monitoring_job_name(uc),
        selection=AssetSelection.groups(GROUP) & AssetSelection.key_prefixes([uc.name]),
        executor_def=in_process_executor,
        tags={"aimass/use_case": uc.name, "aimass/trigger": "monitoring"},
        description=f"Drift and live performance of the served {uc.name} champion.",
    )


def build_monitoring_schedule(uc: UseCase, job: "UnresolvedAssetJobDefinition") -> ScheduleDefinition:
    return ScheduleDefinition(
        name=f"{uc.name}_monitoring_schedule",
        job=job,
        cron_schedule=uc.spec.monitoring.cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Monitors the {uc.name} champion on '{uc.spec.monitoring.cron}' (spec monitoring.cron).",
    )
