"""Preprocessing: types, missing values and duplicates."""

import tempfile
from pathlib import Path

from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, asset, asset_check

from aimass_pipeline.core.scan import AnyTable, ScanTable, by_size, frame_of, path_of
from aimass_pipeline.core.validation import quality_expectations
from aimass_pipeline.orchestration.checks import suite_check
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.preprocessing.cleaning import clean_records
from aimass_pipeline.preprocessing.scan_cleaning import clean_scan


def build_preprocessing(uc: UseCase) -> list:
    @asset(
        name=uc.clean,
        key_prefix=uc.name,
        ins={"raw": uc.ins(uc.raw)[uc.raw]},
        group_name="preprocessing",
        kinds={"pandas", "parquet"},
    )
    def clean_table(context: AssetExecutionContext, raw: AnyTable) -> AnyTable:
        """Typed columns, normalised categories, one row per key (the newest batch wins)."""
        if isinstance(raw, ScanTable):
            scanned, report = clean_scan(raw, uc.contract, Path(tempfile.mkdtemp(prefix="aimass-clean-")))
            table = by_size(scanned, uc.spec.training.max_rows)
        else:
            table, report = clean_records(raw, uc.contract)
        missing = "\n".join(f"| {c} | {n} |" for c, n in report.missing_by_column.items() if n)
        context.add_output_metadata(
            {
                "dagster/row_count": report.rows_out,
                "read_path": path_of(raw),
                **report.as_metadata(),
                "missing_by_column": MetadataValue.md("| column | missing |\n|---|---|\n" + missing),
            }
        )
        return table

    @asset_check(
        asset=clean_table,
        name=f"check_{uc.clean}_quality",
        blocking=True,
        description="Great Expectations: nulls, ranges, categories, target values, key uniqueness",
    )
    def quality_check(clean_table: AnyTable) -> AssetCheckResult:
        # A scanned table is validated on a seeded sample of training.max_rows rows (see README); its
        # keys are unique by construction (clean_scan keeps one row per key).
        sample = frame_of(clean_table, uc.spec.training.max_rows, uc.spec.seed)
        return suite_check(sample, f"{uc.name}_clean_quality", quality_expectations(uc.contract))

    return [clean_table, quality_check]
