"""How long a model takes to answer: the one latency measurement, shared by evaluation (the gate's budget)
and compression (kept only when not slower)."""

from __future__ import annotations

import time

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
