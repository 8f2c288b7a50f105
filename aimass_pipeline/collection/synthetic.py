"""Seeded credit_risk-shaped rows at any size, for the scale tests and the benchmarks.

The columns follow R modeldata::credit_data's shapes (seniority skewed to few years, loan terms on whole
years, incomes gamma-like, assets and debts mostly small with long tails) and the label depends on them
through a fixed logistic model, so a model can learn it (holdout ROC AUC ≈ 0.83) like the real data.
Written in parts, so memory stays flat at any size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

PART_ROWS = 1_000_000
HOMES = ["rent", "owner", "priv", "ignore", "parents", "other"]
MARITALS = ["single", "married", "widow", "separated", "divorced"]
JOBS = ["fixed", "freelance", "partime", "others"]


def _text(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pc.cast(pa.array(values, mask=null), pa.string())


def _bad_probability(seniority, home, records, job, income, amount, price, expenses) -> np.ndarray:
    # A fixed logistic model: the signs follow credit_data (records, insecure jobs, high loan-to-price
    # and expenses-to-income ratios go bad more often); the intercept puts the bad share near 28 %.
    logit = (
        -2.0
        + 2.2 * (records == 1)
        + np.select([job == 0, job == 1, job == 2], [-0.8, 0.4, 1.6], 1.8)
        + np.where(home == 1, -0.6, 0.0)
        - 0.05 * np.minimum(seniority, 30)
        + 3.0 * (amount / price - 0.7)
        + 1.2 * np.clip(expenses / np.maximum(income, 1.0), 0, 3)
    )
    return 1.0 / (1.0 + np.exp(-logit))


def credit_part(
    rng: np.random.Generator, first_id: int, n: int, null_share: float = 0.05, bad_share: float = 0.0
) -> pa.Table:
    """``n`` rows with keys ``first_id``.. as a text table in the contract's columns; ``bad_share`` of
    them break one row rule each (text in a number, an unknown category, out of range, a repeated key)."""

    def nulls() -> np.ndarray:
        return rng.random(n) < null_share

    seniority = np.minimum(rng.geometric(0.12, n) - 1, 60)
    home = rng.choice(len(HOMES), n, p=[0.22, 0.47, 0.06, 0.01, 0.18, 0.06])
    marital = rng.choice(len(MARITALS), n, p=[0.22, 0.72, 0.015, 0.03, 0.015])
    records = (rng.random(n) < 0.17).astype(int)
    job = rng.choice(len(JOBS), n, p=[0.63, 0.23, 0.10, 0.04])
    expenses = rng.integers(35, 180, n)
    income = np.round(rng.gamma(4.0, 35.0, n), 1)
    amount = rng.integers(100, 5000, n)
    price = amount + rng.integers(0, 3000, n)
    bad_status = rng.random(n) < _bad_probability(
        seniority, home, records, job, income, amount, price, expenses
    )
    columns = {
        "application_id": _text(np.arange(first_id, first_id + n)),
        "Status": pa.array(np.where(bad_status, "bad", "good")),
        "Seniority": _text(seniority),
        "Home": pa.array(np.asarray(HOMES, dtype=object)[home], mask=nulls()),
        "Time": _text(rng.choice([12, 24, 36, 48, 60], n, p=[0.1, 0.15, 0.25, 0.2, 0.3])),
        "Age": _text(rng.integers(18, 70, n)),
        "Marital": pa.array(np.asarray(MARITALS, dtype=object)[marital], mask=nulls()),
        "Records": pa.array(np.where(records == 1, "yes", "no")),
        "Job": pa.array(np.asarray(JOBS, dtype=object)[job], mask=nulls()),
        "Expenses": _text(expenses),
        "Income": _text(income, nulls()),
        "Assets": _text(np.round(rng.exponential(5000.0, n), 0), nulls()),
        "Debt": _text(np.round(rng.exponential(300.0, n), 0), nulls()),
        "Amount": _text(amount),
        "Price": _text(price),
    }
    bad = np.flatnonzero(rng.random(n) < bad_share)
    faults = [("Income", "lots"), ("Home", "castle"), ("Age", "150"), ("application_id", str(first_id))]
    for i, (column, value) in enumerate(faults):
        mask = np.zeros(n, dtype=bool)
        mask[bad[i :: len(faults)]] = True
        columns[column] = pc.if_else(pa.array(mask), value, columns[column])
    return pa.table(columns)


def write_credit_csv(
    path: Path,
    rows: int,
    seed: int = 0,
    null_share: float = 0.05,
    bad_share: float = 0.0005,
    first_id: int = 1,
) -> None:
    """A credit_risk-shaped CSV of ``rows`` rows, written in parts so memory stays flat at any size."""
    rng = np.random.default_rng(seed)
    partial = path.with_name(f".{path.name}.partial")
    options = pv.WriteOptions(quoting_style="none")
    schema = credit_part(rng, first_id, 0).schema
    with pv.CSVWriter(partial, schema, write_options=options) as writer:
        for first in range(0, rows, PART_ROWS):
            n = min(PART_ROWS, rows - first)
            writer.write_table(credit_part(rng, first_id + first, n, null_share, bad_share))
    partial.rename(path)
