"""The promotion gate: a challenger replaces the champion only on statistical evidence from one frozen holdout.

Both models are scored on the same rows, so every comparison is paired. A raw "challenger > champion"
on a few hundred rows is mostly noise; the gate asks instead whether the gain survives a test:

* binary ROC AUC: DeLong's test for two correlated AUCs (one-sided, challenger > champion);
* accuracy: McNemar's mid-p test on the rows where exactly one of the two models is right;
* multiclass ROC AUC (one-vs-rest macro): no closed-form test is used, the paired bootstrap gives the p-value.

A paired bootstrap (resample rows, score both models on each resample) also gives the interval of the gain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from aimass_pipeline.core.scoring import as_matrix, checked, correct, score
from aimass_pipeline.evaluation.paired_tests import delong_test, mcnemar_midp, paired_bootstrap

METRICS = ("roc_auc", "accuracy")


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    metric: str
    test: str  # "delong" | "mcnemar" | "bootstrap" | "floor-only" | "incomparable"
    challenger: float
    champion: float | None
    delta: float | None  # challenger - champion on the same rows
    ci_low: float | None  # two-sided (1 - alpha) paired-bootstrap interval of delta
    ci_high: float | None
    p_value: float | None  # one-sided, H1: challenger is better
    n: int
    alpha: float
    min_delta: float
    floor: float
    challenger_latency_ms: float | None
    max_latency_ms: float | None
    # p10 and p90 of the single-row calls whose median is challenger_latency_ms (core.latency)
    challenger_latency_p10_ms: float | None = None
    challenger_latency_p90_ms: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def as_tags(self) -> dict[str, str]:
        """MLflow tags: every value a string, "none" for missing, floats to 6 significant digits."""
        return {f"gate.{key}": _tag_value(value) for key, value in self.as_dict().items()}


def _tag_value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"  # not a fixed number of decimals: a p-value of 1e-9 must not read "0.000000"
    return str(value)


def _as_matrix(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """(n, K) probabilities (a bare P(positive) too), checked against the labels."""
    return checked(y_true, as_matrix(proba))[1]


def _compare(
    metric: str,
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    n_boot: int,
    alpha: float,
    seed: int,
) -> dict:
    """The paired evidence: the test's p-value and the bootstrap interval of challenger - champion."""
    ci_low, ci_high, p_boot = paired_bootstrap(
        metric, y, challenger, champion, n_boot=n_boot, alpha=alpha, seed=seed
    )
    if metric == "accuracy":
        test, p_value = "mcnemar", mcnemar_midp(correct(y, challenger), correct(y, champion))[2]
    elif challenger.shape[1] == 2:
        test, p_value = "delong", delong_test(y, challenger[:, 1], champion[:, 1])[2]
    else:
        test, p_value = "bootstrap", p_boot
    champion_score = score(metric, y, champion)
    return dict(
        test=test,
        champion=champion_score,
        delta=score(metric, y, challenger) - champion_score,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
    )


def _spread(spread: tuple[float | None, float | None]) -> str:
    low, high = spread
    return "unknown" if low is None or high is None else f"{low:.3f}-{high:.3f} ms"


def decide(
    *,
    metric: str,
    y_true: np.ndarray,
    challenger_proba: np.ndarray,
    champion_proba: np.ndarray | None,
    floor: float,
    min_delta: float = 0.0,
    alpha: float = 0.05,
    challenger_latency_ms: float | None = None,
    max_latency_ms: float | None = None,
    challenger_latency_spread_ms: tuple[float | None, float | None] = (None, None),
    n_boot: int = 1000,
    seed: int = 42,
) -> GateDecision:
    """Promote iff the challenger clears the floor, fits the latency budget (when both are given), and is
    either the first model or beats the champion by >= min_delta with p < alpha and a CI above 0."""
    if metric not in METRICS:
        raise ValueError(f"unknown gate metric {metric!r}; known: {METRICS}")
    y = np.asarray(y_true).astype(int)
    challenger_proba = _as_matrix(y, challenger_proba)
    classes = challenger_proba.shape[1]
    if metric == "roc_auc" and np.unique(y).size < classes:
        raise ValueError("every class must occur in the holdout to score ROC AUC")
    challenger = score(metric, y, challenger_proba)
    refusals = []
    if challenger < floor:
        refusals.append(f"{metric} {challenger:.4f} is below the floor {floor:.4f}")
    if challenger_latency_ms is not None and max_latency_ms is not None:
        if challenger_latency_ms > max_latency_ms:
            refusals.append(
                f"latency {challenger_latency_ms:.3f} ms (median, p10-p90 {_spread(challenger_latency_spread_ms)}) "
                f"exceeds the budget of {max_latency_ms:.3f} ms"
            )
    if champion_proba is None:
        evidence: dict = dict(
            test="floor-only", champion=None, delta=None, ci_low=None, ci_high=None, p_value=None
        )
        reason = f"first model; {metric} {challenger:.4f} clears the floor {floor:.4f}"
    else:
        champion_proba = _as_matrix(y, champion_proba)
        if champion_proba.shape != challenger_proba.shape:
            raise ValueError(
                f"champion {champion_proba.shape} and challenger {challenger_proba.shape} differ"
            )
        evidence = _compare(
            metric, y, challenger_proba, champion_proba, n_boot=n_boot, alpha=alpha, seed=seed
        )
        test, delta, p_value = evidence["test"], evidence["delta"], evidence["p_value"]
        interval = f"{1 - alpha:.0%} CI [{evidence['ci_low']:+.4f}, {evidence['ci_high']:+.4f}]"
        if delta < min_delta:
            refusals.append(
                f"gain {delta:+.4f} over the champion's {evidence['champion']:.4f} is below min_delta {min_delta:.4f}"
            )
        if not p_value < alpha:
            refusals.append(f"{test} p={p_value:.3g} is not below alpha={alpha:g}")
        if not evidence["ci_low"] > 0:
            refusals.append(f"the gain's {interval} does not exclude 0")
        reason = (
            f"{metric} {challenger:.4f} beats the champion's {evidence['champion']:.4f} by {delta:+.4f} "
            f"({test} p={p_value:.3g}, {interval})"
        )
    return GateDecision(
        promote=not refusals,
        reason="not promoted: " + "; ".join(refusals) if refusals else reason,
        metric=metric,
        challenger=challenger,
        n=len(y),
        alpha=alpha,
        min_delta=min_delta,
        floor=floor,
        challenger_latency_ms=challenger_latency_ms,
        max_latency_ms=max_latency_ms,
        challenger_latency_p10_ms=challenger_latency_spread_ms[0],
        challenger_latency_p90_ms=challenger_latency_spread_ms[1],
        **evidence,
    )


def incomparable(
    *,
    metric: str,
    y_true: np.ndarray,
    challenger_proba: np.ndarray,
    reason: str,
    floor: float,
    min_delta: float = 0.0,
    alpha: float = 0.05,
    challenger_latency_ms: float | None = None,
    max_latency_ms: float | None = None,
    challenger_latency_spread_ms: tuple[float | None, float | None] = (None, None),
) -> GateDecision:
    """A refusal because the champion cannot be scored on the holdout (it was trained under a contract whose
    columns the holdout lacks): no paired evidence exists, so nothing is promoted automatically."""
    y = np.asarray(y_true).astype(int)
    return GateDecision(
        promote=False,
        reason=f"not promoted: {reason}",
        metric=metric,
        test="incomparable",
        challenger=score(metric, y, _as_matrix(y, challenger_proba)),
        champion=None,
        delta=None,
        ci_low=None,
        ci_high=None,
        p_value=None,
        n=len(y),
        alpha=alpha,
        min_delta=min_delta,
        floor=floor,
        challenger_latency_ms=challenger_latency_ms,
        challenger_latency_p10_ms=challenger_latency_spread_ms[0],
        challenger_latency_p90_ms=challenger_latency_spread_ms[1],
        max_latency_ms=max_latency_ms,
    )
