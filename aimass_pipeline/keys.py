"""Asset keys are ``[<use case>, <name>]``; inputs name their upstream key explicitly (key_prefix does
not apply to inputs)."""

from dagster import AssetIn

from aimass_pipeline.lib.contracts import CREDIT_RISK

USE_CASE = CREDIT_RISK.use_case


def upstream(*names: str, warehouse: tuple[str, ...] = ()) -> dict[str, AssetIn]:
    """AssetIns for sibling assets; names in ``warehouse`` are dbt tables read from the warehouse."""
    ins = {name: AssetIn(key=[USE_CASE, name]) for name in names}
    ins.update({name: AssetIn(key=[USE_CASE, name], input_manager_key="warehouse_io") for name in warehouse})
    return ins
