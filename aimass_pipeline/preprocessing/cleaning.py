"""Raw batches into a typed, de-duplicated table; every rule broken is named with file, row and column."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.row_rules import check_rows


@dataclass
class CleaningReport:
    rows_in: int
    rows_out: int = 0
    exact_duplicates: int = 0
    superseded_keys: int = 0
    missing_by_column: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "exact_duplicates_dropped": self.exact_duplicates,
            "superseded_keys": self.superseded_keys,
            "missing_values": sum(self.missing_by_column.values()),
        }


def fail_rows(frame: pd.DataFrame, bad: np.ndarray, column: str, rule: str, message: str) -> None:
    rows = frame.loc[bad]
    first = rows.iloc[0]
    raise DataContractError(
        f"{message} (first value {first[column]!r}; {int(bad.sum())} row(s))",
        source=str(first["_source_file"]),
        rule=rule,
        column=column,
        rows=rows["_source_row"].astype(int).tolist(),
    )


def _text(frame: pd.DataFrame, contract: Contract) -> pa.Table:
    return pa.table(
        {c: pa.array(frame[c].astype(object), pa.string(), from_pandas=True) for c in contract.raw_columns}
    )


def clean_records(raw: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, CleaningReport]:
    """Type and normalise every column by the contract's rules (``core.row_rules``, as ingestion checks
    them), then drop duplicates; the first rule any row breaks fails the whole table, naming its rows."""
    report = CleaningReport(rows_in=len(raw))
    raw = raw.reset_index(drop=True)
    checked = check_rows(_text(raw, contract), contract, normalise=True)
    for violation in checked.violations:
        fail_rows(raw, violation.mask, violation.column, violation.rule, violation.message)
    out = pd.DataFrame(
        {
            name: values.to_numpy(zero_copy_only=False)
            if name in contract.numeric_features
            else values.to_pandas().astype(object)
            for name, values in checked.values.items()
        }
    )
    out = out.assign(_batch_id=raw["_batch_id"].to_numpy(), _source_file=raw["_source_file"].to_numpy())

    content = [contract.key, contract.target, *contract.feature_names]
    duplicated = out.duplicated(subset=content, keep="first")
    report.exact_duplicates = int(duplicated.sum())
    out = out.loc[~duplicated]
    # A key landing again with other values is a correction: the newest batch wins.
    superseded = out.duplicated(subset=[contract.key], keep="last")
    report.superseded_keys = int(superseded.sum())
    out = out.loc[~superseded].reset_index(drop=True)

    report.rows_out = len(out)
    report.missing_by_column = {c: int(out[c].isna().sum()) for c in contract.feature_names}
    return out[[*content, "_batch_id", "_source_file"]], report
