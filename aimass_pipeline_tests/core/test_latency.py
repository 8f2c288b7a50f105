"""The gate's latency figure: a median over enough single-row calls after a warm-up, with its spread."""

import time

import numpy as np
import pandas as pd

from aimass_pipeline.core.latency import MIN_CALLS, single_row_latency


class _Jittery:
    """1 ms a call, every tenth call 20 ms (a busy neighbour), the first five 50 ms (cold caches)."""

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        slow = self.calls <= 5 or self.calls % 10 == 0
        time.sleep(0.05 if self.calls <= 5 else 0.02 if slow else 0.001)
        return np.zeros((len(X), 2))


def test_the_figure_is_a_median_after_warm_up_over_enough_calls_with_its_spread() -> None:
    X = pd.DataFrame({"a": np.arange(100.0)})
    model = _Jittery()

    figure = single_row_latency(model, X, seed=0)

    assert figure.calls >= MIN_CALLS >= 50, figure
    assert 1.0 <= figure.median_ms < 3.0, f"the warm-up and the one-in-ten stalls moved the median: {figure}"
    assert figure.p90_ms >= figure.median_ms and figure.p10_ms <= figure.median_ms, figure
    assert figure.max_ms >= 19.0, f"the spread hides the stalls: {figure}"
    assert set(figure.as_metrics()) >= {"latency_ms_single_row", "latency_ms_single_row_p90", "latency_calls"}
