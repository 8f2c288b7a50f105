"""Analysis: a profile of the model-ready table, with plots for the operator."""

import base64

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, asset

from aimass_pipeline.keys import upstream
from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.profiling import distribution_png, profile_markdown, profile_table
from aimass_pipeline.resources import LakeResource

USE_CASE = CREDIT_RISK.use_case
TARGET = "is_bad"


@asset(
    key_prefix=USE_CASE,
    group_name="analysis",
    ins=upstream(warehouse=("credit_features",)),
    kinds={"pandas", "matplotlib"},
)
def credit_features_profile(
    context: AssetExecutionContext, credit_features: pd.DataFrame, lake: LakeResource
) -> dict:
    """Counts, missingness, class balance and per-class distributions of every numeric feature."""
    profile = profile_table(credit_features, CREDIT_RISK, TARGET)
    png = distribution_png(credit_features, CREDIT_RISK, TARGET)
    plot_path = lake.lake().write_bytes(png, "reports", USE_CASE, "credit_features_distributions.png")
    image = base64.b64encode(png).decode()
    context.add_output_metadata(
        {
            "dagster/row_count": profile["rows"],
            "missing_values": profile["missing_values"],
            "positive_rate": profile["positive_rate"],
            "summary": MetadataValue.md(profile_markdown(profile)),
            "distributions": MetadataValue.md(f"![distributions](data:image/png;base64,{image})"),
            "distributions_png": MetadataValue.path(plot_path),
        }
    )
    return {k: v for k, v in profile.items() if k != "numeric_summary"}
