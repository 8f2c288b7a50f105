"""Jobs over the asset graph."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from aimass_pipeline.lib.contracts import CREDIT_RISK

# In-process: on 2 cores a fresh process per step costs ~5 s each, more than most steps' real work.
lifecycle_job = define_asset_job(
    name=f"{CREDIT_RISK.use_case}_lifecycle",
    selection=AssetSelection.key_prefixes([CREDIT_RISK.use_case]),
    executor_def=in_process_executor,
    tags={"aimass/use_case": CREDIT_RISK.use_case},
    description="The whole lifecycle: landed file to a served champion.",
)
