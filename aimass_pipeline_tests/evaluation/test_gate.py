"""The statistical promotion gate on constructed challenger/champion pairs scored on the same labels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from aimass_pipeline.core.scoring import auc, score
from aimass_pipeline.evaluation.gate import decide
from aimass_pipeline.evaluation.paired_tests import delong_test, mcnemar_midp, paired_bootstrap

METRICS = ["roc_auc", "accuracy"]


def _binary(logit: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-logit))
    return np.column_stack([1 - p, p])


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """600 labels; a weak champion and a clearly stronger challenger (both centred on logit 0)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    signal = 2.0 * y - 1
    champion = _binary(0.6 * signal + rng.normal(0, 1.2, y.size))
    challenger = _binary(1.5 * signal + rng.normal(0, 1.0, y.size))
    return y, challenger, champion


def _decide(metric: str, y: np.ndarray, challenger: np.ndarray, champion: np.ndarray | None, **kw):
    return decide(
        metric=metric, y_true=y, challenger_proba=challenger, champion_proba=champion, floor=0.5, **kw
    )


@pytest.mark.parametrize("metric", METRICS)
def test_clearly_better_challenger_is_promoted(metric: str, pair) -> None:
    y, challenger, champion = pair
    d = _decide(metric, y, challenger, champion)
    assert d.promote, d.reason
    assert d.test == {"roc_auc": "delong", "accuracy": "mcnemar"}[metric]
    assert d.delta > 0.1 and d.ci_low > 0 and d.p_value < 1e-6
    assert d.ci_low <= d.delta <= d.ci_high and d.n == y.size and "beats" in d.reason


@pytest.mark.parametrize("metric", METRICS)
def test_identical_predictions_are_not_promoted(metric: str, pair) -> None:
    y, challenger, _ = pair
    d = _decide(metric, y, challenger, challenger.copy())
    assert not d.promote
    assert d.delta == 0 and d.p_value == 1.0 and d.ci_low == d.ci_high == 0
    assert "not below alpha" in d.reason and "does not exclude 0" in d.reason


@pytest.mark.parametrize("metric", METRICS)
def test_worse_challenger_is_not_promoted(metric: str, pair) -> None:
    y, challenger, champion = pair
    d = _decide(metric, y, champion, challenger)
    assert not d.promote
    assert d.delta < -0.1 and d.ci_high < 0 and d.p_value > 0.999 and "below min_delta" in d.reason


@pytest.mark.parametrize("metric", METRICS)
def test_noisily_better_challenger_on_few_rows_is_not_promoted(metric: str) -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 80)
    logit = 0.8 * (2.0 * y - 1) + rng.normal(0, 1.0, y.size)
    champion = _binary(logit)
    challenger = _binary(logit + rng.normal(0, 0.4, y.size) + 0.1 * (2.0 * y - 1))
    d = _decide(metric, y, challenger, champion)
    assert 0 < d.delta < 0.05, "the construction must give a small real gain"
    assert not d.promote and d.p_value > 0.05 and d.ci_low <= 0
    # The old point-estimate gate would have promoted it: the refusal is the statistics' doing.
    assert d.challenger > d.champion and d.challenger >= d.floor


@pytest.mark.parametrize("metric", METRICS)
def test_first_model_only_has_to_clear_the_floor(metric: str, pair) -> None:
    y, challenger, _ = pair
    value = score(metric, y, challenger)

    def first_model(floor: float):
        return decide(metric=metric, y_true=y, challenger_proba=challenger, champion_proba=None, floor=floor)

    first = first_model(value)  # the floor is inclusive
    assert first.promote and first.test == "floor-only" and "first model" in first.reason
    assert first.delta is first.p_value is first.ci_low is None and first.challenger == value
    below = first_model(value + 0.01)
    assert not below.promote and "below the floor" in below.reason


def test_latency_budget_refuses_an_otherwise_better_challenger(pair) -> None:
    y, challenger, champion = pair
    fits = _decide("roc_auc", y, challenger, champion, challenger_latency_ms=8.0, max_latency_ms=10.0)
    too_slow = _decide("roc_auc", y, challenger, champion, challenger_latency_ms=12.0, max_latency_ms=10.0)
    assert fits.promote and not too_slow.promote
    assert "exceeds the budget" in too_slow.reason and too_slow.p_value < 1e-6


@pytest.mark.parametrize("metric", METRICS)
def test_min_delta_holds_back_a_significant_but_small_gain(metric: str, pair) -> None:
    y, challenger, champion = pair
    gain = _decide(metric, y, challenger, champion).delta
    assert _decide(metric, y, challenger, champion, min_delta=gain - 0.01).promote
    held = _decide(metric, y, challenger, champion, min_delta=gain + 0.01)
    assert not held.promote and "below min_delta" in held.reason and held.p_value < 1e-6


def _delong_brute_force(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """DeLong 1988 verbatim: the O(m*n) pairwise kernel psi(x, y) = 1{x > y} + 1{x == y} / 2."""
    components = []
    for s in (a, b):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        components.append((psi.mean(axis=1), psi.mean(axis=0), psi.mean()))
    (v10a, v01a, auc_a), (v10b, v01b, auc_b) = components
    m, n = v10a.size, v01a.size
    var = np.var(v10a - v10b, ddof=1) / m + np.var(v01a - v01b, ddof=1) / n
    return auc_a - auc_b, var, stats.norm.sf((auc_a - auc_b) / np.sqrt(var))


def test_delong_matches_a_hand_worked_case() -> None:
    # Positives (0.9, 0.6) vs negatives (0.7, 0.1) under A; (0.8, 0.3) vs (0.5, 0.4) under B.
    # AUCs 0.75 and 0.5; both difference components are (0, 0.5): variance 0.125/2 + 0.125/2.
    delta, var, p = delong_test(
        np.array([1, 1, 0, 0]), np.array([0.9, 0.6, 0.7, 0.1]), np.array([0.8, 0.3, 0.5, 0.4])
    )
    assert delta == pytest.approx(0.25) and var == pytest.approx(0.125)
    assert p == pytest.approx(stats.norm.sf(0.25 / np.sqrt(0.125)))


def test_delong_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    a = np.round(y * 0.8 + rng.normal(0, 1, y.size), 1)  # rounding forces ties
    b = np.round(y * 0.5 + rng.normal(0, 1, y.size), 1)
    fast, slow = delong_test(y, a, b), _delong_brute_force(y, a, b)
    assert fast == pytest.approx(slow, rel=1e-10)
    assert auc(y == 1, a) == pytest.approx(roc_auc_score(y, a))


def test_delong_variance_matches_the_sampling_variance() -> None:
    """Across 400 simulated holdouts, the mean DeLong variance matches the empirical variance of the delta."""
    rng = np.random.default_rng(11)
    deltas, variances = [], []
    for _ in range(400):
        y = rng.integers(0, 2, 200)
        shared = rng.normal(0, 1, y.size)  # correlated models, as two candidates on one holdout are
        a = y + shared + rng.normal(0, 0.7, y.size)
        b = 0.8 * y + shared + rng.normal(0, 0.7, y.size)
        delta, var, _ = delong_test(y, a, b)
        deltas.append(delta)
        variances.append(var)
    assert np.mean(variances) == pytest.approx(np.var(deltas, ddof=1), rel=0.2)


def test_mcnemar_mid_p_matches_the_binomial_by_hand() -> None:
    wins_a = np.array([True] * 10 + [False] * 2 + [True] * 50)
    wins_b = np.array([False] * 10 + [True] * 2 + [True] * 50)
    # P(X > 10) + P(X = 10)/2 for X ~ Binomial(12, 1/2) = (12 + 1 + 66/2) / 4096
    assert mcnemar_midp(wins_a, wins_b) == (10, 2, pytest.approx(46 / 4096))
    exact = stats.binomtest(10, 12, 0.5, alternative="greater").pvalue
    assert mcnemar_midp(wins_a, wins_b)[2] == pytest.approx(exact - 0.5 * stats.binom.pmf(10, 12, 0.5))


@pytest.mark.parametrize("metric", METRICS)
def test_bootstrap_is_reproducible_with_the_seed(metric: str, pair) -> None:
    y, challenger, champion = pair
    first = paired_bootstrap(metric, y, challenger, champion, n_boot=200, seed=5)
    assert paired_bootstrap(metric, y, challenger, champion, n_boot=200, seed=5) == first
    assert paired_bootstrap(metric, y, challenger, champion, n_boot=200, seed=6) != first


def test_multiclass_auc_uses_the_paired_bootstrap() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 450)
    onehot = np.eye(3)[y]

    def softmax(logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    champion = softmax(0.5 * onehot + rng.normal(0, 1, onehot.shape))
    challenger = softmax(2.0 * onehot + rng.normal(0, 1, onehot.shape))
    assert score("roc_auc", y, champion) == pytest.approx(
        roc_auc_score(y, champion, multi_class="ovr", average="macro")
    )
    better = _decide("roc_auc", y, challenger, champion)
    assert better.promote and better.test == "bootstrap" and better.p_value < 0.01, better.reason
    assert not _decide("roc_auc", y, champion, challenger).promote
    same = _decide("roc_auc", y, challenger, challenger)
    assert not same.promote and same.p_value == 1.0
    assert _decide("accuracy", y, challenger, champion).test == "mcnemar"


def test_tags_are_prefixed_strings(pair) -> None:
    y, challenger, champion = pair
    tags = _decide("roc_auc", y, challenger, champion).as_tags()
    assert set(tags) == {f"gate.{k}" for k in _decide("roc_auc", y, challenger, None).as_dict()}
    assert all(isinstance(v, str) for v in tags.values())
    assert tags["gate.promote"] == "true" and tags["gate.test"] == "delong"
    assert "e-" in tags["gate.p_value"]  # a tiny p-value keeps its magnitude
    assert _decide("roc_auc", y, challenger, None).as_tags()["gate.champion"] == "none"


def test_rejects_malformed_inputs(pair) -> None:
    y, challenger, champion = pair
    with pytest.raises(ValueError, match="unknown gate metric"):
        _decide("f1", y, challenger, champion)
    with pytest.raises(ValueError, match="but proba has 10 rows"):
        _decide("roc_auc", y, challenger[:10], champion)
    with pytest.raises(ValueError, match="within"):
        _decide("roc_auc", y, challenger * 2, champion)


@pytest.mark.parametrize("metric", METRICS)
def test_vectorised_bootstrap_equals_the_resample_loop(metric: str) -> None:
    """The matrix path scores the very resamples the loop would, ties and class-less resamples included."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 40)
    a = _binary(np.round(rng.normal(0, 1, 40), 1) + y)  # rounded: many tied scores
    b = _binary(rng.normal(0, 1, 40))
    draws = np.random.default_rng(3)
    diffs = []
    for _ in range(300):
        idx = draws.integers(0, 40, 40)
        if np.unique(y[idx]).size < 2:
            continue
        diffs.append(score(metric, y[idx], a[idx]) - score(metric, y[idx], b[idx]))
    low, high = np.quantile(diffs, [0.025, 0.975])
    p = (1 + np.sum(np.asarray(diffs) <= 0)) / (len(diffs) + 1)
    got = paired_bootstrap(metric, y, a, b, n_boot=300, seed=3)
    assert got == pytest.approx((low, high, p), abs=1e-12)
