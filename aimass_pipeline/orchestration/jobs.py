"""Jobs over the asset graph per use case: the lifecycle (a landed batch to a served champion) and the
retrain (the same, from the raw zone's batches, without ingesting); and how the CLI runs them in process
and reads their history."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RunRequest,
    RunsFilter,
    define_asset_job,
    in_process_executor,
)

from aimass_pipeline.orchestration.use_case import MONITORING_GROUP, USE_CASE_TAG, UseCase

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def _use_case_assets(uc: UseCase) -> AssetSelection:
    return AssetSelection.key_prefixes([uc.name]) - AssetSelection.groups(MONITORING_GROUP)


def _batch_partitioned(uc: UseCase) -> AssetSelection:
    """The batch asset and its direct per-batch consumers (the batch profile): partitioned, so a run that
    targets no batch cannot run them. The raw table is their one unpartitioned consumer."""
    batch = AssetSelection.assets(uc.key(uc.raw_batch))
    return batch.downstream(depth=1) - AssetSelection.assets(uc.key(uc.raw))


def build_lifecycle_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    # In-process: on 2 cores a fresh process per step costs ~5 s each, more than most steps' real work.
    return define_asset_job(
        name=uc.lifecycle_job,
        selection=_use_case_assets(uc),
        executor_def=in_process_executor,
        tags={USE_CASE_TAG: uc.name},
        description=f"The whole {uc.name} lifecycle for one landed batch (a partition): batch to served champion.",
    )


def build_retrain_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    return define_asset_job(
        name=uc.retrain_job,
        selection=_use_case_assets(uc) - _batch_partitioned(uc),
        executor_def=in_process_executor,
        tags={USE_CASE_TAG: uc.name},
        description=f"The {uc.name} lifecycle over every batch already in the raw zone, ingesting nothing.",
    )


def execute_batch(
    defs: Definitions,
    uc: UseCase,
    instance: DagsterInstance,
    request: RunRequest,
    run_config: dict,
    asset_selection: list[AssetKey] | None = None,
) -> ExecuteInProcessResult:
    """Run the lifecycle job in this process for the batch ``request`` names, exactly as the sensor's run
    would (the partition registered first); a failure is in the result, not raised."""
    instance.add_dynamic_partitions(uc.batches.name, [request.partition_key])
    return defs.resolve_job_def(uc.lifecycle_job).execute_in_process(
        instance=instance,
        run_config=run_config,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=asset_selection,
        raise_on_error=False,
    )


def failed_checks(result: ExecuteInProcessResult, check_name: str) -> list[str]:
    """The descriptions of every failed evaluation of ``check_name`` in a run."""
    return [
        e.description or ""
        for e in result.get_asset_check_evaluations()
        if e.check_name == check_name and not e.passed
    ]


def run_failures(result: ExecuteInProcessResult) -> list[str]:
    """The failed steps and checks of a run, for a message an operator can act on."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            cause = (
                error.cause.message.strip()
                if error and error.cause
                else (error.message.strip() if error else "")
            )
            lines.append(f"step {event.step_key} failed: {cause.splitlines()[-1] if cause else ''}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            check = event.event_specific_data
            lines.append(
                f"check {check.check_name} on {check.asset_key.to_user_string()} failed: {check.description or ''}"
            )
    return lines


@contextmanager
def dagster_instance() -> Iterator[DagsterInstance]:
    """The instance of ``DAGSTER_HOME`` (``Settings.prepare()`` exports it)."""
    with DagsterInstance.get() as instance:
        yield instance


def last_run(use_case: str) -> dict | None:
    """The newest run of any of the use case's jobs: id, job, status and its start and end times."""
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=RunsFilter(tags={USE_CASE_TAG: use_case}), limit=1)
        if not runs:
            return None
        run = runs[0]
        record = instance.get_run_record_by_id(run.run_id)
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "started_at": record.start_time if record else None,
        "ended_at": record.end_time if record else None,
    }


def run_status(run_id: str) -> str | None:
    """A run's status in the instance's history, None when it is not there."""
    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
    return run.status.value if run is not None else None
