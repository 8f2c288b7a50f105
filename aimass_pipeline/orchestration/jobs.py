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
    build_reconstructable_job,
    define_asset_job,
    execute_job,
)

from aimass_pipeline.orchestration.executor import WorkerRunResult, lifecycle_executor
from aimass_pipeline.orchestration.use_case import MONITORING_GROUP, ROLLOUT_GROUP, USE_CASE_TAG, UseCase
from aimass_pipeline.settings.scale import load_scale_settings

# Where a Celery worker rebuilds a job by name: the code location module (it builds the same definitions
# from the same environment, which `aimass worker` shares with the run).
RECONSTRUCTOR = ("aimass_pipeline.definitions", "job_named")

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def _use_case_assets(uc: UseCase) -> AssetSelection:
    return AssetSelection.key_prefixes([uc.name]) - AssetSelection.groups(MONITORING_GROUP, ROLLOUT_GROUP)


def _batch_partitioned(uc: UseCase) -> AssetSelection:
    """The batch asset and its direct per-batch consumers (the batch profile): partitioned, so a run that
    targets no batch cannot run them. The raw table is their one unpartitioned consumer."""
    batch = AssetSelection.assets(uc.key(uc.raw_batch))
    return batch.downstream(depth=1) - AssetSelection.assets(uc.key(uc.raw))


def build_lifecycle_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    return define_asset_job(
        name=uc.lifecycle_job,
        selection=_use_case_assets(uc),
        executor_def=lifecycle_executor(),
        tags={USE_CASE_TAG: uc.name},
        description=f"The whole {uc.name} lifecycle for one landed batch (a partition): batch to served champion.",
    )


def build_retrain_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    return define_asset_job(
        name=uc.retrain_job,
        selection=_use_case_assets(uc) - _batch_partitioned(uc),
        executor_def=lifecycle_executor(),
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
) -> ExecuteInProcessResult | WorkerRunResult:
    """Run the lifecycle job for the batch ``request`` names, exactly as the sensor's run would (the
    partition registered first); a failure is in the result, not raised. In this process, or with
    ``AIMASS_EXECUTOR=celery`` coordinated from this process, each step a Celery task."""
    instance.add_dynamic_partitions(uc.batches.name, [request.partition_key])
    if load_scale_settings().celery:
        # execute_in_process would force the in-process executor; a worker needs a job it can rebuild.
        job = build_reconstructable_job(*RECONSTRUCTOR, reconstructable_args=(uc.lifecycle_job,))
        executor = job.get_definition().executor_def.name
        if executor != "celery":
            # The code location module was built before AIMASS_EXECUTOR=celery was set in this process:
            # its steps would run here, in process, while the caller believes they are on workers.
            raise RuntimeError(
                f"AIMASS_EXECUTOR=celery, but {RECONSTRUCTOR[0]} was loaded with the {executor} executor; "
                "set AIMASS_EXECUTOR before the process imports it"
            )
        result = execute_job(
            job,
            instance=instance,
            run_config=run_config,
            tags={**request.tags, "dagster/partition": request.partition_key},
            asset_selection=asset_selection,
            raise_on_error=False,
        )
        return WorkerRunResult(result)
    return defs.resolve_job_def(uc.lifecycle_job).execute_in_process(
        instance=instance,
        run_config=run_config,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=asset_selection,
        raise_on_error=False,
    )


def failed_checks(result: ExecuteInProcessResult | WorkerRunResult, check_name: str) -> list[str]:
    """The descriptions of every failed evaluation of ``check_name`` in a run."""
    return [
        e.description or ""
        for e in result.get_asset_check_evaluations()
        if e.check_name == check_name and not e.passed
    ]


def run_failures(result: ExecuteInProcessResult | WorkerRunResult) -> list[str]:
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
