"""Preprocessing: types, missing values and duplicates."""

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, asset, asset_check

from aimass_pipeline.keys import upstream
from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.preprocessing import clean_applications as clean
from aimass_pipeline.lib.validation import quality_expectations
from aimass_pipeline.quality import suite_check

USE_CASE = CREDIT_RISK.use_case


@asset(
    key_prefix=USE_CASE,
    ins=upstream("raw_applications"),
    group_name="preprocessing",
    kinds={"pandas", "parquet"},
)
def clean_applications(context: AssetExecutionContext, raw_applications: pd.DataFrame) -> pd.DataFrame:
    """Typed columns, normalised categories, one row per application (the newest batch wins)."""
    table, report = clean(raw_applications, CREDIT_RISK)
    missing = "\n".join(f"| {c} | {n} |" for c, n in report.missing_by_column.items())
    context.add_output_metadata(
        {
            "dagster/row_count": report.rows_out,
            **report.as_metadata(),
            "missing_by_column": MetadataValue.md("| column | missing |\n|---|---|\n" + missing),
        }
    )
    return table


@asset_check(
    asset=clean_applications, blocking=True, description="Great Expectations: nulls, ranges, categories"
)
def check_clean_applications_quality(clean_applications: pd.DataFrame) -> AssetCheckResult:
    return suite_check(clean_applications, f"{USE_CASE}_clean_quality", quality_expectations(CREDIT_RISK))
