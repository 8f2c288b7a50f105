"""Jobs over the asset graph per use case: the lifecycle (a landed batch to a served champion) and the
retrain (the same, from the raw zone's batches, without ingesting)."""

from typing import TYPE_CHECKING

from dagster import AssetSelection, define_asset_job, in_process_executor

from aimass_pipeline.use_case import UseCase

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# Monitoring assets watch the served model on their own schedule; a data batch must not run them.
MONITORING_GROUP = "monitoring"


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
        name=f"{uc.name}_lifecycle",
        selection=_use_case_assets(uc),
        executor_def=in_process_executor,
        tags={"aimass/use_case": uc.name},
        description=f"The whole {uc.name} lifecycle for one landed batch (a partition): batch to served champion.",
    )


def build_retrain_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    return define_asset_job(
        name=f"{uc.name}_retrain",
        selection=_use_case_assets(uc) - _batch_partitioned(uc),
        executor_def=in_process_executor,
        tags={"aimass/use_case": uc.name},
        description=f"The {uc.name} lifecycle over every batch already in the raw zone, ingesting nothing.",
    )
