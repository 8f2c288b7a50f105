"""The lifecycle job on Dagster's default multiprocess executor, for the overhead comparison only."""

from dagster import Definitions, define_asset_job, multiprocess_executor

from aimass_pipeline.definitions import defs as aimass_defs
from aimass_pipeline.jobs import lifecycle_job

multiprocess_lifecycle = define_asset_job(
    name="credit_risk_lifecycle_multiprocess",
    selection=lifecycle_job.selection,
    executor_def=multiprocess_executor.configured({"max_concurrent": 2}),
    tags={"aimass/bench": "multiprocess"},
)

defs = Definitions.merge(aimass_defs, Definitions(jobs=[multiprocess_lifecycle]))
