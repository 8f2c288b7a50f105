"""The gate's false-promotion rate when the challenger was chosen among several: at most alpha when the choice
is made on the selection rows, well above it when made on the holdout the gate tests on (the old way)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aimass_pipeline.evaluation.gate import decide
from aimass_pipeline.evaluation.selection import choose, selection_scores

ALPHA = 0.05
REPETITIONS = 200
CHALLENGERS = 8
SELECTION_ROWS, HOLDOUT_ROWS = 300, 400


def _proba(logit: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-logit))
    return np.stack([1 - p, p], axis=-1)


def _world(seed: int) -> dict:
    """Labels and predictions of a champion and CHALLENGERS candidates of exactly equal skill (same signal,
    independent noise of the same size) on the selection rows and on the holdout, one seed per repetition."""
    rng = np.random.default_rng(seed)
    worlds = {}
    for part, rows in (("selection", SELECTION_ROWS), ("holdout", HOLDOUT_ROWS)):
        y = rng.integers(0, 2, rows)
        signal = 2.0 * y - 1
        logits = 1.0 * signal + rng.normal(0, 1.5, (CHALLENGERS + 1, rows))  # row 0 is the champion
        worlds[part] = (y, _proba(logits))
    return worlds


def _false_promotions(choose_on: str) -> int:
    promoted = 0
    for seed in range(REPETITIONS):
        world = _world(seed)
        y_choice, p_choice = world[choose_on]
        names = [f"c{k}" for k in range(CHALLENGERS)]
        best = choose(
            "roc_auc", selection_scores("roc_auc", y_choice, dict(zip(names, p_choice[1:], strict=True)))
        )
        y, p = world["holdout"]
        decision = decide(
            metric="roc_auc",
            y_true=y,
            challenger_proba=p[1 + names.index(best)],
            champion_proba=p[0],
            floor=0.5,
            alpha=ALPHA,
            seed=seed,
        )
        promoted += decision.promote
    return promoted


def test_choosing_on_the_selection_rows_keeps_false_promotions_within_alpha() -> None:
    # One-sided 99% binomial upper limit of the count at rate alpha: a valid gate stays under it but for a
    # 1% chance, which the fixed seeds turn into a fixed outcome.
    limit = stats.binom.ppf(0.99, REPETITIONS, ALPHA)
    honest = _false_promotions("selection")
    assert honest <= limit, (
        f"{honest}/{REPETITIONS} false promotions choosing on the selection rows > {limit}"
    )
    # The same gate, the challenger chosen on the holdout it is then tested on: the bias the split removes.
    biased = _false_promotions("holdout")
    assert biased > limit, f"choosing on the holdout gave only {biased}/{REPETITIONS}: the test has no teeth"
    print(
        f"false promotions: selection {honest}/{REPETITIONS}, holdout {biased}/{REPETITIONS}, limit {limit:.0f}"
    )


def test_choose_respects_the_metric_direction_and_ties() -> None:
    assert choose("roc_auc", {"a": 0.8, "b": 0.9}) == "b"
    assert choose("log_loss", {"a": 0.3, "b": 0.2}) == "b"
    assert choose("accuracy", {"a": 0.9, "b": 0.9}) == "a"
    with pytest.raises(ValueError, match="no candidates"):
        choose("roc_auc", {})
