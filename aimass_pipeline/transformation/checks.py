"""The Great Expectations gate between transformation and training, derived from the contract."""

from dagster import AssetCheckResult, asset_check

from aimass_pipeline.core.scan import ScanTable, frame_of
from aimass_pipeline.core.validation import model_table_expectations
from aimass_pipeline.orchestration.checks import suite_check
from aimass_pipeline.orchestration.resources import LakeResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase
from aimass_pipeline.transformation.resources import WarehouseResource


def build_model_table_check(uc: UseCase) -> list:
    # Enough rows for the gate's holdout once the holdout fraction is split off.
    min_rows = int(uc.spec.gate.min_holdout_rows / uc.spec.holdout_fraction)

    @asset_check(
        asset=uc.key(uc.model_table),
        name=f"check_{uc.model_table}_contract",
        blocking=True,
        description="Great Expectations: the model table training reads still meets the data contract",
    )
    def model_table_check(warehouse: WarehouseResource, lake: LakeResource) -> AssetCheckResult:
        # dbt writes the table into the warehouse, the Python transformation into the lake: read it
        # from where its own asset stored it.
        max_rows = uc.spec.training.max_rows
        if uc.spec.transformation == "dbt":
            table = warehouse.read_table(uc.name, uc.model_table, max_rows)
        else:
            store = lake.lake()
            uri = store.uri("assets", uc.name, f"{uc.model_table}.parquet")
            table = ScanTable.of_files([uri], **store.storage_options)
        # Over training.max_rows rows the suite runs on a seeded sample of that size (see README).
        return suite_check(
            frame_of(table, max_rows, uc.spec.seed),
            f"{uc.name}_model_table",
            model_table_expectations(uc.contract, LABEL, min_rows),
        )

    return [model_table_check]
