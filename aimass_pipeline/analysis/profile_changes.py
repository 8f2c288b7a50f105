"""What changed between two data profiles: row counts, means, missing rates, category and class shares, and
the population stability index (PSI) of each feature, computed from the profiles' compact sketches alone so
a batch's profile can be compared with the previous batch's without reading that batch again. A numeric
column's PSI bins the current batch between the previous one's deciles, so a profile is taken knowing the
previous profile (``profile_table(..., reference=previous)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DECILES = np.linspace(0.1, 0.9, 9)
# Share floor in PSI: an empty bin on one side would otherwise give an infinite index.
PSI_FLOOR = 1e-4
# The usual reading of PSI: under 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major one.
PSI_SHIFT = 0.25


def _bin_shares(present: pd.Series, cuts: list[float]) -> list[float]:
    """Shares of ``present`` in the bins (-inf, c1], (c1, c2], ..., (ck, inf)."""
    bins = np.searchsorted(np.asarray(cuts, dtype="float64"), present.to_numpy(), side="left")
    counts = np.bincount(bins, minlength=len(cuts) + 1)
    return [round(float(c) / max(len(present), 1), 6) for c in counts]


def numeric_sketch(values: pd.Series, reference: dict | None = None) -> dict:
    """Mean, missing rate, the column's decile cut points with its shares between them and, given the
    previous profile's sketch of the column, its shares between that profile's cut points (an exact PSI
    needs both sides binned alike, and discrete values tie on cut points)."""
    present = values.dropna().astype("float64")
    cuts = sorted({round(float(q), 6) for q in present.quantile(DECILES)}) if len(present) else []
    ref_cuts = reference["cuts"] if reference else None
    return {
        "mean": round(float(present.mean()), 6) if len(present) else None,
        "missing_rate": round(float(values.isna().mean()), 6),
        "cuts": cuts,
        "shares": _bin_shares(present, cuts),
        "reference_cuts": ref_cuts,
        "reference_shares": _bin_shares(present, ref_cuts) if ref_cuts is not None else None,
    }


def category_sketch(values: pd.Series) -> dict:
    present = values.dropna().astype(str)
    shares = present.value_counts(normalize=True).sort_index()
    return {
        "missing_rate": round(float(values.isna().mean()), 6),
        "shares": {str(k): round(float(v), 6) for k, v in shares.items()},
    }


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(expected, PSI_FLOOR, None)
    a = np.clip(actual, PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(previous: dict, current: dict) -> float | None:
    """PSI of a numeric column: the current batch between the previous one's decile cut points."""
    if not previous["cuts"] or current["reference_shares"] is None:
        return None
    if current["reference_cuts"] != previous["cuts"]:
        raise ValueError(
            "the current profile was not binned on the previous profile's cut points: "
            "profile it with profile_table(..., reference=previous)"
        )
    return round(_psi(np.asarray(previous["shares"]), np.asarray(current["reference_shares"])), 6)


def psi_from_shares(previous: dict[str, float], current: dict[str, float]) -> float:
    levels = sorted(set(previous) | set(current))
    return round(
        _psi(
            np.array([previous.get(k, 0.0) for k in levels]),
            np.array([current.get(k, 0.0) for k in levels]),
        ),
        6,
    )


def _delta(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    return round(current - previous, 6)


def compare_profiles(previous: dict, current: dict) -> dict:
    """Per-feature changes from ``previous`` to ``current`` (both from ``profile_table``); features present
    on one side only are listed, not skipped."""
    changes: dict[str, dict] = {}
    prev_sketch, cur_sketch = previous["sketch"], current["sketch"]
    for name, cur in cur_sketch["numeric"].items():
        prev = prev_sketch["numeric"].get(name)
        if prev is None:
            continue
        changes[name] = {
            "kind": "numeric",
            "mean_delta": _delta(cur["mean"], prev["mean"]),
            "missing_rate_delta": _delta(cur["missing_rate"], prev["missing_rate"]),
            "psi": numeric_psi(prev, cur),
        }
    for name, cur in cur_sketch["categorical"].items():
        prev = prev_sketch["categorical"].get(name)
        if prev is None:
            continue
        levels = sorted(set(prev["shares"]) | set(cur["shares"]))
        changes[name] = {
            "kind": "category",
            "missing_rate_delta": _delta(cur["missing_rate"], prev["missing_rate"]),
            "share_delta": {
                k: round(cur["shares"].get(k, 0.0) - prev["shares"].get(k, 0.0), 6) for k in levels
            },
            "psi": psi_from_shares(prev["shares"], cur["shares"]),
        }
    psis = {n: c["psi"] for n, c in changes.items() if c["psi"] is not None}
    return {
        "previous": previous.get("name"),
        "current": current.get("name"),
        "rows": current["rows"],
        "previous_rows": previous["rows"],
        "row_delta": current["rows"] - previous["rows"],
        "class_balance_delta": {
            k: round(current["class_balance"].get(k, 0.0) - previous["class_balance"].get(k, 0.0), 6)
            for k in sorted(set(previous["class_balance"]) | set(current["class_balance"]))
        },
        "label_psi": psi_from_shares(previous["class_balance"], current["class_balance"]),
        "features": changes,
        "max_psi": max(psis.values()) if psis else None,
        "shifted_features": sorted(n for n, p in psis.items() if p > PSI_SHIFT),
        "only_previous": sorted(
            (set(prev_sketch["numeric"]) | set(prev_sketch["categorical"])) - set(changes)
        ),
        "only_current": sorted((set(cur_sketch["numeric"]) | set(cur_sketch["categorical"])) - set(changes)),
    }


def changes_markdown(change: dict, top: int = 12) -> str:
    """The features that moved most (by PSI), for the asset's metadata."""
    lines = [
        f"**Since {change['previous']}**: {change['previous_rows']} → {change['rows']} rows "
        f"({change['row_delta']:+d}); label PSI {change['label_psi']:.4f}; "
        f"max feature PSI {change['max_psi'] if change['max_psi'] is not None else 'n/a'}; "
        f"shifted (PSI > {PSI_SHIFT}): {', '.join(change['shifted_features']) or 'none'}",
        "",
        "| feature | PSI | mean Δ | missing-rate Δ | largest share Δ |",
        "|---|---|---|---|---|",
    ]
    ranked = sorted(change["features"].items(), key=lambda kv: -(kv[1]["psi"] or 0.0))[:top]
    for name, c in ranked:
        share = ""
        if c["kind"] == "category" and c["share_delta"]:
            level, value = max(c["share_delta"].items(), key=lambda kv: abs(kv[1]))
            share = f"{level} {value:+.3f}"
        mean = c.get("mean_delta")
        lines.append(
            f"| {name} | {c['psi'] if c['psi'] is not None else 'n/a'} | "
            f"{'' if mean is None else f'{mean:+.4g}'} | {c['missing_rate_delta']:+.4f} | {share} |"
        )
    return "\n".join(lines)
