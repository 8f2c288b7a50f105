"""The credit_risk lifecycle on Dagster's default multiprocess executor, for the overhead comparison only."""

from dagster import AssetSelection, Definitions, define_asset_job, multiprocess_executor

from aimass_pipeline.definitions import defs as aimass_defs

multiprocess_lifecycle = define_asset_job(
    name="credit_risk_lifecycle_multiprocess",
    selection=AssetSelection.key_prefixes(["credit_risk"]),
    executor_def=multiprocess_executor.configured({"max_concurrent": 2}),
    tags={"aimass/bench": "multiprocess"},
)

defs = Definitions.merge(aimass_defs, Definitions(jobs=[multiprocess_lifecycle]))
