"""Which candidate goes to the gate: the best by the primary metric on the selection rows, never the holdout.

Choosing the best of N on the rows the gate then tests on picks, among equally good candidates, the one
whose holdout noise was luckiest; the gate's test at alpha then promotes it more often than alpha
(``aimass_pipeline_tests/evaluation/test_selection.py`` measures how much more)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aimass_pipeline.core.scoring import higher_is_better, score


def selection_scores(metric: str, y_true: np.ndarray, probas: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``metric`` of each candidate's probabilities on the selection rows."""
    return {name: score(metric, y_true, proba) for name, proba in probas.items()}


def choose(metric: str, scores: Mapping[str, float]) -> str:
    """The best candidate by ``metric``; a tie goes to the first named, so the choice is reproducible."""
    if not scores:
        raise ValueError("no candidates to choose from")
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(scores, key=lambda name: sign * scores[name])
