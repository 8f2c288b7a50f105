"""Ratio features derived from a credit application's amounts.

Computed inside the model pipeline rather than in the warehouse, so the served model computes them from a
raw request exactly as training did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RATIOS: dict[str, tuple[str, str]] = {
    "amount_to_price": ("Amount", "Price"),
    "debt_to_assets": ("Debt", "Assets"),
    "expenses_to_income": ("Expenses", "Income"),
    "amount_per_month": ("Amount", "Time"),
    "amount_to_income": ("Amount", "Income"),
}


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Append ratio features; a zero or missing denominator gives NaN, never inf."""
    out = frame.copy()
    for name, (num, den) in RATIOS.items():
        if num in out.columns and den in out.columns:
            numerator = pd.to_numeric(out[num], errors="coerce").astype("float64")
            denominator = pd.to_numeric(out[den], errors="coerce").astype("float64")
            out[name] = numerator / denominator.replace(0.0, np.nan)
    return out


def ratio_names(columns: list[str]) -> list[str]:
    return [name for name, (num, den) in RATIOS.items() if num in columns and den in columns]
