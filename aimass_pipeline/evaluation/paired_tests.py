"""Paired comparisons of two classifiers scored on the same rows: the statistics behind the promotion gate.

Probabilities are (n, K) class matrices and labels ints 0..K-1. Every function is a pure numpy/scipy
computation, so the tests can check each one against a brute-force or hand-worked reference.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from aimass_pipeline.core.scoring import NEEDS_EVERY_CLASS, correct, score


def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> tuple[float, float, float]:
    """DeLong, DeLong & Clarke-Pearson (1988), with Sun & Xu's (2014) midrank algorithm, O(n log n).

    Returns (auc_a - auc_b, variance of that difference, one-sided p-value for auc_a > auc_b).
    """
    positive = np.asarray(y_true) == 1
    scores = np.vstack([score_a, score_b]).astype(float)
    pos, neg = scores[:, positive], scores[:, ~positive]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least two rows of each class")
    ranks_all = stats.rankdata(np.hstack([pos, neg]), axis=1)
    ranks_pos, ranks_neg = stats.rankdata(pos, axis=1), stats.rankdata(neg, axis=1)
    aucs = (ranks_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    # Structural components: the share of negatives each positive outranks, and the share of
    # positives that outrank each negative (ties half). Their covariances give the AUCs' covariance.
    v10 = (ranks_all[:, :m] - ranks_pos) / n
    v01 = 1.0 - (ranks_all[:, m:] - ranks_neg) / m
    cov = np.cov(v10) / m + np.cov(v01) / n
    delta = float(aucs[0] - aucs[1])
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if variance <= 1e-15:
        # Identical rankings: the limit of the normal tail as the variance vanishes.
        return delta, max(variance, 0.0), 0.0 if delta > 0 else 1.0
    return delta, variance, float(stats.norm.sf(delta / np.sqrt(variance)))


def mcnemar_midp(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """One-sided McNemar mid-p test that model a is more often right than model b.

    Only discordant rows carry information: b = a right and b wrong, c = the reverse; under H0 b is
    Binomial(b + c, 1/2). The mid-p (P(X > b) + P(X = b) / 2) keeps the exact test's validity in
    practice without its conservatism on small counts (Fagerland, Lydersen & Laake 2013).
    """
    wins = int(np.sum(correct_a & ~correct_b))
    losses = int(np.sum(~correct_a & correct_b))
    if wins + losses == 0:
        return wins, losses, 1.0  # the models never disagree: no evidence either way
    trials = wins + losses
    p = stats.binom.sf(wins, trials, 0.5) + 0.5 * stats.binom.pmf(wins, trials, 0.5)
    return wins, losses, float(p)


def paired_bootstrap(
    metric: str,
    y_true: np.ndarray,
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 42,
) -> tuple[float, float, float]:
    """Resample rows with replacement and score both models on each same resample.

    Returns (ci_low, ci_high, p): the two-sided (1 - alpha) percentile interval of metric_a - metric_b and
    the one-sided percentile p-value, the share of resampled differences <= 0 with the +1 correction
    (Davison & Hinkley) so that a finite bootstrap never claims p = 0.
    """
    rng = np.random.default_rng(seed)
    n, classes = len(y_true), proba_a.shape[1]
    if metric == "accuracy" or (metric == "roc_auc" and classes == 2):
        # The same resamples as the loop below (one draw of n_boot x n indices is the same stream), scored
        # as row weights in whole matrices: ~50x faster, which the gate's calibration tests rely on.
        diffs = _weighted_deltas(metric, np.asarray(y_true), proba_a, proba_b, rng, n_boot)
    else:
        deltas = []
        for _ in range(n_boot):
            idx = rng.integers(0, n, n)
            y = y_true[idx]
            if metric in NEEDS_EVERY_CLASS and np.unique(y).size < classes:
                continue  # undefined on a resample that lost a class
            deltas.append(score(metric, y, proba_a[idx]) - score(metric, y, proba_b[idx]))
        diffs = np.asarray(deltas)
    if diffs.size < n_boot / 2:
        raise ValueError("most bootstrap resamples lost a class; the holdout is too small for this metric")
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = (1 + np.sum(diffs <= 0)) / (diffs.size + 1)
    return float(low), float(high), float(p)


_BLOCK = 200  # resamples per block: bounds the (block x n) weight matrix on a big holdout


def _weighted_deltas(
    metric: str,
    y: np.ndarray,
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    rng: np.random.Generator,
    n_boot: int,
) -> np.ndarray:
    """metric_a - metric_b on each resample, a resample being the count of times it drew each row."""
    n = len(y)
    out = []
    for start in range(0, n_boot, _BLOCK):
        block = min(_BLOCK, n_boot - start)
        idx = rng.integers(0, n, (block, n))
        offsets = idx + (np.arange(block) * n)[:, None]
        weights = np.bincount(offsets.ravel(), minlength=block * n).reshape(block, n).astype(float)
        if metric == "accuracy":
            wins = correct(y, proba_a).astype(float) - correct(y, proba_b).astype(float)
            out.append(weights @ wins / n)
            continue
        positive = y == 1
        both = ((weights * positive).sum(axis=1) > 0) & ((weights * ~positive).sum(axis=1) > 0)
        weights = weights[both]  # AUC is undefined on a resample that lost a class
        out.append(
            _weighted_auc(weights, positive, proba_a[:, 1]) - _weighted_auc(weights, positive, proba_b[:, 1])
        )
    return np.concatenate(out)


def _weighted_auc(weights: np.ndarray, positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC (ties half) per row of ``weights``: ``core.scoring.auc`` of each resample."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # one group per distinct score
    w = weights[:, order]
    pos, neg = w * positive[order], w * ~positive[order]
    if starts.size < ordered.size:  # ties: sum each group of equal scores (reduceat is slow, so only then)
        pos, neg = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(neg, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
