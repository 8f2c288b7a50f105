"""Raw batches into a typed, de-duplicated table; every rule broken is named with file, row and column."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.errors import DataContractError


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


def _fail(frame: pd.DataFrame, bad: pd.Series, column: str, rule: str, message: str) -> None:
    rows = frame.loc[bad]
    first = rows.iloc[0]
    raise DataContractError(
        f"{message} (first value {first[column]!r}; {int(bad.sum())} row(s))",
        source=str(first["_source_file"]),
        rule=rule,
        column=column,
        rows=rows["_source_row"].astype(int).tolist(),
    )


def _cast_numeric(frame: pd.DataFrame, column: str, kind: str) -> pd.Series:
    text = frame[column]
    values = pd.to_numeric(text.str.strip(), errors="coerce")
    _check(frame, text.notna() & values.isna(), column, "type.numeric", f"not a number ({kind} expected)")
    if kind == "int":
        _check(frame, values.notna() & (values % 1 != 0), column, "type.integer", "not a whole number")
    return values.astype("float64")


def _check(frame: pd.DataFrame, bad: pd.Series, column: str, rule: str, message: str) -> None:
    if bool(bad.any()):
        _fail(frame, bad, column, rule, message)


def clean_records(raw: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, CleaningReport]:
    """Cast types, normalise categories, drop duplicates; values outside ranges are left for the checks."""
    report = CleaningReport(rows_in=len(raw))
    out = raw.copy()
    _check(out, out[contract.key].isna(), contract.key, "key.not_null", "missing key")
    out[contract.key] = out[contract.key].str.strip()
    for col in contract.features:
        if col.kind in ("int", "float"):
            out[col.name] = _cast_numeric(out, col.name, col.kind)
        else:
            normalised = out[col.name].str.strip().str.lower()
            allowed = set(col.categories)
            bad = normalised.notna() & ~normalised.isin(allowed)
            _check(out, bad, col.name, "category.allowed", f"not one of {sorted(allowed)}")
            out[col.name] = normalised.astype(object).where(normalised.notna(), None)
        if not col.nullable:
            _check(out, out[col.name].isna(), col.name, "not_null", "missing value in a required column")
    target = out[contract.target].str.strip().str.lower()
    bad_target = target.isna() | ~target.isin(contract.classes)
    _check(out, bad_target, contract.target, "target.allowed", f"target not one of {list(contract.classes)}")
    out[contract.target] = target

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
