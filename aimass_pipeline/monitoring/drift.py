"""Drift between the data a model was trained on and the data it now serves: PSI and KS per numeric feature,
PSI and chi-square per categorical feature, and the same for the model's predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from aimass_pipeline.core.errors import DataContractError

BINS = 10
# Proportions are floored here so an empty bin on one side gives a large but finite PSI.
EPSILON = 1e-4
MISSING = "<missing>"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    psi: float
    test: str
    statistic: float
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """One comparison of a current window with a reference; ``rows`` is empty when it could not be made."""

    subject: str
    reference_rows: int
    current_rows: int
    rows: list[FeatureDrift] = field(default_factory=list)
    retrain_recommended: bool = False
    reason: str = ""

    @property
    def drifted_features(self) -> list[str]:
        return [row.feature for row in self.rows if row.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.rows) if self.rows else 0.0

    @property
    def max_psi(self) -> float:
        return max((row.psi for row in self.rows), default=0.0)

    def ranked(self) -> list[FeatureDrift]:
        return sorted(self.rows, key=lambda row: row.psi, reverse=True)

    def as_markdown(self) -> str:
        verdict = "**retraining recommended**" if self.retrain_recommended else "no retraining"
        lines = [
            f"{self.subject}: {verdict}: {self.reason}",
            "",
            f"reference rows {self.reference_rows}, current rows {self.current_rows}",
        ]
        if self.rows:
            lines += [
                "",
                "| feature | kind | PSI | test | statistic | p-value | drifted |",
                "|---|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {r.feature} | {r.kind} | {r.psi:.4f} | {r.test} | {r.statistic:.4f} | {r.p_value:.2e} | "
                f"{'yes' if r.drifted else ''} |"
                for r in self.ranked()
            ]
        return "\n".join(lines)


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return np.clip(counts / total, EPSILON, None) if total else np.full(len(counts), EPSILON)


def psi_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins."""
    ref, cur = _proportions(np.asarray(reference, float)), _proportions(np.asarray(current, float))
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_counts(
    reference: pd.Series, current: pd.Series, bins: int = BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Counts over the reference's quantile bins, plus one bin for missing values."""
    ref = pd.to_numeric(reference, errors="raise").astype(float).to_numpy()
    cur = pd.to_numeric(current, errors="raise").astype(float).to_numpy()
    present = ref[~np.isnan(ref)]
    # Interior cut points only; ties (integer features) collapse quantiles into fewer, wider bins.
    edges = (
        np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])
    )

    def count(values: np.ndarray) -> np.ndarray:
        kept = values[~np.isnan(values)]
        binned = np.bincount(np.searchsorted(edges, kept, side="right"), minlength=len(edges) + 1)
        return np.append(binned, np.isnan(values).sum())

    return count(ref), count(cur)


def categorical_counts(reference: pd.Series, current: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    ref = reference.astype(object).where(reference.notna(), MISSING).astype(str)
    cur = current.astype(object).where(current.notna(), MISSING).astype(str)
    levels = sorted(set(ref) | set(cur))
    ref_counts = ref.value_counts().reindex(levels, fill_value=0).to_numpy()
    cur_counts = cur.value_counts().reindex(levels, fill_value=0).to_numpy()
    return levels, ref_counts, cur_counts


def compare_numeric(
    name: str, reference: pd.Series, current: pd.Series, psi_threshold: float, alpha: float
) -> FeatureDrift:
    ref_counts, cur_counts = numeric_counts(reference, current)
    psi = psi_from_counts(ref_counts, cur_counts)
    ref, cur = reference.dropna().astype(float), current.dropna().astype(float)
    if len(ref) and len(cur):
        result = stats.ks_2samp(ref, cur)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        statistic, p_value = float("nan"), float("nan")
    # No test is possible when one side has only missing values; the missing-value bin's PSI then decides.
    drifted = bool(psi > psi_threshold and (np.isnan(p_value) or p_value < alpha))
    return FeatureDrift(name, "numeric", psi, "ks", statistic, p_value, drifted)


def compare_categorical(
    name: str, reference: pd.Series, current: pd.Series, psi_threshold: float, alpha: float
) -> FeatureDrift:
    _, ref_counts, cur_counts = categorical_counts(reference, current)
    psi = psi_from_counts(ref_counts, cur_counts)
    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        chi2, p_value, _, _ = stats.chi2_contingency(table)
        statistic, p_value = float(chi2), float(p_value)
    else:
        statistic, p_value = 0.0, 1.0
    return FeatureDrift(
        name, "categorical", psi, "chi2", statistic, p_value, psi > psi_threshold and p_value < alpha
    )


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DataContractError(
                f"no column {column!r} to compare (has {sorted(map(str, frame.columns))[:20]})",
                source=source,
                rule="unknown_column",
                column=column,
            )
    if frame.empty:
        raise DataContractError("no rows to compare", source=source, rule="empty_window")


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    psi_threshold: float,
    alpha: float,
    drifted_share: float,
    text: tuple[str, ...] | list[str] = (),
) -> DriftReport:
    """A feature drifts when its PSI exceeds the threshold and its test rejects equality at ``alpha``:
    PSI alone is noisy on small windows, the tests alone flag negligible shifts on large ones."""
    _require(reference, [*numeric, *categorical], "reference")
    _require(current, [*numeric, *categorical], "current window")
    rows = [compare_numeric(c, reference[c], current[c], psi_threshold, alpha) for c in numeric]
    rows += [compare_categorical(c, reference[c], current[c], psi_threshold, alpha) for c in categorical]
    if text:
        from aimass_pipeline.monitoring.text_drift import compare_text

        _require(reference, list(text), "reference")
        for c in text:
            psi, oov, drifted = compare_text(reference[c], current[c], psi_threshold, psi_from_counts)
            rows.append(FeatureDrift(c, "text", psi, "OOV share", oov, float("nan"), drifted))
    report = DriftReport("feature drift", len(reference), len(current), rows)
    share = report.drifted_share
    recommended = share >= drifted_share
    reason = (
        f"{len(report.drifted_features)} of {len(rows)} features drifted ({share:.0%}; "
        f"threshold {drifted_share:.0%}): {', '.join(report.drifted_features) or 'none'}"
    )
    return DriftReport("feature drift", len(reference), len(current), rows, recommended, reason)


def prediction_drift(
    reference_proba: np.ndarray,
    current: pd.DataFrame,
    classes: list[str],
    psi_threshold: float,
    alpha: float,
) -> DriftReport:
    """Served predictions against the model's own predictions on reference data: the positive-class
    probability for a binary model, the predicted-class mix and the top probability for a multiclass one."""
    proba = np.asarray(reference_proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(classes) or not len(proba):
        raise DataContractError(
            f"reference probabilities have shape {proba.shape}, expected (n > 0, {len(classes)})",
            source="reference predictions",
            rule="shape",
        )
    _require(current, ["probability", "label"], "current window")
    if len(classes) == 2:
        rows = [
            compare_numeric(
                "probability", pd.Series(proba[:, 1]), current["probability"], psi_threshold, alpha
            )
        ]
    else:
        reference_labels = pd.Series(np.asarray(classes, dtype=object)[proba.argmax(axis=1)])
        rows = [
            compare_categorical("label", reference_labels, current["label"], psi_threshold, alpha),
            compare_numeric(
                "top_probability", pd.Series(proba.max(axis=1)), current["probability"], psi_threshold, alpha
            ),
        ]
    report = DriftReport("prediction drift", len(proba), len(current), rows)
    drifted = report.drifted_features
    reason = (
        f"prediction distribution shifted: {', '.join(drifted)} (max PSI {report.max_psi:.3f} > {psi_threshold})"
        if drifted
        else f"predictions stable (max PSI {report.max_psi:.3f}, threshold {psi_threshold})"
    )
    return DriftReport("prediction drift", len(proba), len(current), rows, bool(drifted), reason)


def served_features(
    predictions: pd.DataFrame, features: list[str], personal: Sequence[str] = ()
) -> pd.DataFrame:
    """The served records (the log's ``inputs`` JSON) as a frame with the contract's feature columns.
    ``personal``: the contract's PII columns, which a request may carry (logged as pseudonyms) but no model reads."""
    import json

    records = [json.loads(text) for text in predictions["inputs"]]
    frame = (
        pd.DataFrame.from_records(records, columns=features) if records else pd.DataFrame(columns=features)
    )
    unknown = sorted({key for record in records for key in record} - set(features) - set(personal))
    if unknown:
        raise DataContractError(
            f"served records carry fields outside the contract: {unknown[:5]}",
            source="prediction log",
            rule="unknown_column",
            column=unknown[0],
        )
    return frame
