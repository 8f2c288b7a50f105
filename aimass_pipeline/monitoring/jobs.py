"""The monitoring job of each use case, and the monitoring loop driven from one process (end-to-end tests,
scripts): run the job now and tick the drift sensor, instead of waiting for the schedule and the daemon."""

from typing import TYPE_CHECKING

from dagster import (
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RunRequest,
    SkipReason,
    build_sensor_context,
    define_asset_job,
    in_process_executor,
)

from aimass_pipeline.monitoring.reports import REPORTS
from aimass_pipeline.orchestration.use_case import MONITORING_GROUP, USE_CASE_TAG, UseCase

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_monitoring_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    return define_asset_job(
        name=uc.monitoring_job,
        selection=AssetSelection.groups(MONITORING_GROUP) & AssetSelection.key_prefixes([uc.name]),
        executor_def=in_process_executor,
        tags={USE_CASE_TAG: uc.name, "aimass/trigger": "monitoring"},
        description=f"Drift and live performance of the served {uc.name} champion.",
    )


def run_monitoring(
    uc: UseCase, instance: DagsterInstance, defs: Definitions, raise_on_error: bool = True
) -> ExecuteInProcessResult:
    """Materialise ``[<use_case>, served_predictions|feature_drift|prediction_drift|live_performance]`` in
    ``instance``, where the drift sensor reads them; the environment must come from ``Settings.prepare()``."""
    job = defs.resolve_job_def(uc.monitoring_job)
    return job.execute_in_process(instance=instance, raise_on_error=raise_on_error)


def monitoring_outputs(result: ExecuteInProcessResult, use_case: str) -> dict[str, dict]:
    """The reports of a monitoring run by asset name: ``retrain_recommended``, ``reason`` and the figures."""
    return {name: result.output_for_node(f"{use_case}__{name}") for name in REPORTS}


def tick_drift_sensor(
    defs: Definitions, use_case: str, instance: DagsterInstance, cursor: str | None = None
) -> tuple[RunRequest | SkipReason, str | None]:
    """One evaluation of ``<use_case>_drift_sensor``: its RunRequest for ``<use_case>_retrain`` (or why
    not) and the cursor to pass to the next tick."""
    context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return defs.resolve_sensor_def(f"{use_case}_drift_sensor")(context), context.cursor
