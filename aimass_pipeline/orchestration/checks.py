"""Great Expectations outcomes as Dagster asset-check results (observed vs expected in the metadata)."""

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from aimass_pipeline.core.validation import run_suite


def suite_check(frame: pd.DataFrame, suite_name: str, expectations: list) -> AssetCheckResult:
    outcome = run_suite(frame, suite_name, expectations)
    failures = outcome.failures
    return AssetCheckResult(
        passed=outcome.success,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{len(outcome.outcomes)} expectations passed"
            if outcome.success
            else "failed: " + "; ".join(f"{f.expectation}({f.column or ''}): {f.observed}" for f in failures)
        ),
        metadata={
            "suite": suite_name,
            "expectations": len(outcome.outcomes),
            "failed": len(failures),
            "rows_validated": len(frame),
            "results": MetadataValue.md(outcome.markdown()),
        },
    )
