"""Jobs over the asset graph: one lifecycle job per use case."""

from typing import TYPE_CHECKING

from dagster import AssetSelection, define_asset_job, in_process_executor

from aimass_pipeline.use_case import UseCase

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_lifecycle_job(uc: UseCase) -> "UnresolvedAssetJobDefinition":
    # In-process: on 2 cores a fresh process per step costs ~5 s each, more than most steps' real work.
    return define_asset_job(
        name=f"{uc.name}_lifecycle",
        selection=AssetSelection.key_prefixes([uc.name]),
        executor_def=in_process_executor,
        tags={"aimass/use_case": uc.name},
        description=f"The whole {uc.name} lifecycle: landed file to a served champion.",
    )
