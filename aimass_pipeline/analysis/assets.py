"""Analysis: a profile of the model-ready table, with plots for the operator."""

import base64

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, asset

from aimass_pipeline.lib.profiling import distribution_png, profile_markdown, profile_table
from aimass_pipeline.resources import LakeResource
from aimass_pipeline.use_case import LABEL, UseCase


def build_analysis(uc: UseCase) -> list:
    @asset(
        name=f"{uc.model_table}_profile",
        key_prefix=uc.name,
        ins={"table": uc.ins(uc.model_table)[uc.model_table]},
        group_name="analysis",
        kinds={"pandas", "matplotlib"},
    )
    def profile(context: AssetExecutionContext, table: pd.DataFrame, lake: LakeResource) -> dict:
        """Counts, missingness, class balance, correlations and per-class distributions of the features."""
        summary = profile_table(table, uc.contract, LABEL)
        png = distribution_png(table, uc.contract, LABEL)
        plot_path = lake.lake().write_bytes(png, "reports", uc.name, f"{uc.model_table}_distributions.png")
        image = base64.b64encode(png).decode()
        context.add_output_metadata(
            {
                "dagster/row_count": summary["rows"],
                "missing_values": summary["missing_values"],
                "class_balance": MetadataValue.json(summary["class_balance"]),
                "summary": MetadataValue.md(profile_markdown(summary)),
                "distributions": MetadataValue.md(f"![distributions](data:image/png;base64,{image})"),
                "distributions_png": MetadataValue.path(plot_path),
            }
        )
        return {k: v for k, v in summary.items() if k != "numeric_summary"}

    return [profile]
