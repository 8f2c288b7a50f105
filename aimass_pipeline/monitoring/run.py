"""The monitoring loop driven from one process (end-to-end tests, scripts): run a use case's monitoring job
now, and tick its drift sensor, instead of waiting for the schedule and the daemon."""

from dagster import (
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from aimass_pipeline.catalog import use_case_specs
from aimass_pipeline.definitions import build_definitions
from aimass_pipeline.monitoring.schedules import monitoring_job_name
from aimass_pipeline.use_case import UseCase

REPORTS = ("feature_drift", "prediction_drift", "live_performance")


def run_monitoring(
    use_case: str, instance: DagsterInstance, defs: Definitions | None = None, raise_on_error: bool = True
) -> ExecuteInProcessResult:
    """Materialise ``[<use_case>, served_predictions|feature_drift|prediction_drift|live_performance]`` in
    ``instance``, where the drift sensor reads them; the environment must come from ``Settings.prepare()``."""
    specs = use_case_specs()
    defs = defs or build_definitions(specs)
    job = defs.resolve_job_def(monitoring_job_name(UseCase(specs[use_case])))
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
