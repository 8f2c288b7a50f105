"""The Great Expectations gate between transformation and training, derived from the contract."""

import pandas as pd
from dagster import AssetCheckResult, asset_check

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
        if uc.spec.transformation == "dbt":
            table = warehouse.read_table(uc.name, uc.model_table)
        else:
            table = lake.lake().read_parquet("assets", uc.name, f"{uc.model_table}.parquet")
        return suite_check(
            pd.DataFrame(table),
            f"{uc.name}_model_table",
            model_table_expectations(uc.contract, LABEL, min_rows),
        )

    return [model_table_check]
