"""How long a model takes to answer: the one latency measurement, shared by evaluation (the gate's budget)
and compression (kept only when not slower).

The gate's figure (``single_row_latency``) is the median of at least ``MIN_CALLS`` one-row calls after
``WARMUP_CALLS`` untimed ones, on distinct seeded rows, with its spread (p10, p90, max) kept as evidence: 20
calls after a single warm-up moved by 30-50 % between runs on a shared 2-core box, enough to flip a
decision against a tight budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

SINGLE_ROWS = 20  # rows timed one at a time, as an online request would arrive
BATCH_REPEATS = 15


def latency_ms(models: list[object], X: pd.DataFrame, seed: int = 42) -> list[tuple[float, float]]:
    """(single-row, batch) milliseconds per row for each model, medians after a warm-up; models are timed
    interleaved so drift of a shared machine hits them alike."""
    rows = np.random.default_rng(seed).choice(len(X), size=min(SINGLE_ROWS, len(X)), replace=False)
    singles = [X.iloc[[i]] for i in rows]
    for model in models:  # warm-up: lazy sessions, allocator, first-call dispatch
        model.predict_proba(singles[0])
        model.predict_proba(X)
    single: list[list[float]] = [[] for _ in models]
    batch: list[list[float]] = [[] for _ in models]
    for row in singles:
        for times, model in zip(single, models, strict=True):
            start = time.perf_counter()
            model.predict_proba(row)
            times.append((time.perf_counter() - start) * 1000)
    for _ in range(BATCH_REPEATS):
        for times, model in zip(batch, models, strict=True):
            start = time.perf_counter()
            model.predict_proba(X)
            times.append((time.perf_counter() - start) * 1000 / len(X))
    return [(float(np.median(s)), float(np.median(b))) for s, b in zip(single, batch, strict=True)]


WARMUP_CALLS = 10
MIN_CALLS = 60
MAX_CALLS = 400
TIME_BUDGET_S = 2.0  # past MIN_CALLS, calls continue up to MAX_CALLS within this budget


@dataclass(frozen=True)
class LatencyFigure:
    median_ms: float
    p10_ms: float
    p90_ms: float
    max_ms: float
    calls: int

    def as_metrics(self) -> dict[str, float]:
        return {
            "latency_ms_single_row": self.median_ms,
            "latency_ms_single_row_p10": self.p10_ms,
            "latency_ms_single_row_p90": self.p90_ms,
            "latency_ms_single_row_max": self.max_ms,
            "latency_calls": float(self.calls),
        }


def single_row_latency(model: object, X: pd.DataFrame, seed: int = 42) -> LatencyFigure:
    """One-row ``predict_proba`` milliseconds of ``model``: median and spread after a warm-up."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    rows = [X.iloc[[i]] for i in order[: min(len(X), MAX_CALLS)]]
    for i in range(WARMUP_CALLS):  # lazy sessions, allocator, first-call dispatch
        model.predict_proba(rows[i % len(rows)])  # type: ignore[attr-defined]
    times: list[float] = []
    deadline = time.perf_counter() + TIME_BUDGET_S
    while len(times) < MIN_CALLS or (len(times) < MAX_CALLS and time.perf_counter() < deadline):
        row = rows[len(times) % len(rows)]
        start = time.perf_counter()
        model.predict_proba(row)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - start) * 1000)
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return LatencyFigure(float(median), float(p10), float(p90), float(max(times)), len(times))
