"""The mixture sequential probability ratio test (mSPRT) on two arms' per-prediction losses.

Johari, Pekelis, Walsh (2017), "Always valid inference": with the estimate ``d = mean(loss_challenger) -
mean(loss_champion)``, its sampling variance ``V = var_a / n_a + var_b / n_b`` and a normal mixture of scale
``tau`` (the minimum effect) over the true difference, the mixture likelihood ratio against "no difference" is

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 * d^2 / (2 V (V + tau^2)))

and ``P(Lambda ever reaches 1/alpha | no difference) <= alpha``, however often it is looked at. The always-valid
p-value is the running minimum of ``1 / Lambda``. Plain numpy: the sensor, the asset and the simulation share it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TestState:
    n_champion: int
    n_challenger: int
    estimate: float  # challenger loss minus champion loss: < 0 means the challenger is better
    log_lr: float  # log Lambda, the running statistic
    boundary: float  # log(1 / alpha)
    p_value: float  # always valid: the running minimum of 1 / Lambda
    crossed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def log_mixture_lr(d: float, variance: float, tau: float) -> float:
    """log Lambda of the normal mixture (scale ``tau``) for an estimate ``d`` of sampling variance ``variance``."""
    if variance <= 0:
        variance = 1e-12  # identical constant losses: no evidence either way beyond the estimate itself
    t2 = tau * tau
    return 0.5 * math.log(variance / (variance + t2)) + t2 * d * d / (2 * variance * (variance + t2))


def _moments(losses: np.ndarray) -> tuple[int, float, float]:
    n = len(losses)
    return n, float(losses.mean()) if n else 0.0, float(losses.var(ddof=1)) if n > 1 else 0.0


def msprt(
    champion: np.ndarray,
    challenger: np.ndarray,
    alpha: float,
    tau: float,
    min_samples: int,
    p_before: float = 1.0,
) -> TestState:
    """The test on all losses so far; ``p_before`` is the p-value of the previous look (kept if smaller)."""
    na, ma, va = _moments(np.asarray(champion, dtype=float))
    nb, mb, vb = _moments(np.asarray(challenger, dtype=float))
    boundary = math.log(1 / alpha)
    if min(na, nb) < min_samples:
        return TestState(na, nb, mb - ma if na and nb else 0.0, 0.0, boundary, p_before, False)
    d = mb - ma
    llr = log_mixture_lr(d, va / na + vb / nb, tau)
    p = min(p_before, math.exp(-llr) if llr > 0 else 1.0)
    return TestState(na, nb, d, llr, boundary, p, llr >= boundary)


def trajectory(
    champion: np.ndarray,
    challenger: np.ndarray,
    order_champion: np.ndarray,
    order_challenger: np.ndarray,
    alpha: float,
    tau: float,
    min_samples: int,
    looks: int = 50,
) -> list[TestState]:
    """The test at ``looks`` evenly spaced moments of label arrival (``order_*``: each loss's arrival rank or
    time), stopping at the first crossing: what a sensor looking that often would have seen."""
    champion, challenger = np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)
    times = np.concatenate(
        [np.asarray(order_champion, dtype=float), np.asarray(order_challenger, dtype=float)]
    )
    if not len(times):
        return []
    ca, cb = (
        champion[np.argsort(order_champion, kind="stable")],
        challenger[np.argsort(order_challenger, kind="stable")],
    )
    ta, tb = (
        np.sort(np.asarray(order_champion, dtype=float)),
        np.sort(np.asarray(order_challenger, dtype=float)),
    )
    cuts = np.unique(np.quantile(times, np.linspace(0, 1, looks + 1)[1:], method="higher"))
    states: list[TestState] = []
    p = 1.0
    for cut in cuts:
        state = msprt(
            ca[: np.searchsorted(ta, cut, "right")],
            cb[: np.searchsorted(tb, cut, "right")],
            alpha,
            tau,
            min_samples,
            p,
        )
        p = state.p_value
        states.append(state)
        if state.crossed:
            break
    return states


def _llr_vector(n_a, s_a, q_a, n_b, s_b, q_b, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """log Lambda and the estimate at many looks at once from running counts, sums and sums of squares."""
    ma, mb = s_a / n_a, s_b / n_b
    va = np.maximum(q_a - n_a * ma * ma, 0) / np.maximum(n_a - 1, 1)
    vb = np.maximum(q_b - n_b * mb * mb, 0) / np.maximum(n_b - 1, 1)
    v = np.maximum(va / n_a + vb / n_b, 1e-12)
    d, t2 = mb - ma, tau * tau
    return 0.5 * np.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2)), d


def simulate_decisions(
    rng: np.random.Generator,
    repetitions: int,
    loss_champion: float,
    loss_challenger: float,
    share: float,
    alpha: float,
    tau: float,
    max_challenger: int,
    min_samples: int = 30,
    every: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Per repetition: +1 promoted (challenger better), -1 stopped for being worse, 0 no decision by
    ``max_challenger`` challenger labels; and the labelled requests (both arms) seen when it decided. Losses
    are Bernoulli errors (``loss_*`` = error rates); the challenger gets ``share`` of the labelled traffic; the
    test looks after every ``every`` challenger labels, as a sensor polling the labels would."""
    decisions = np.zeros(repetitions, dtype=int)
    seen = np.zeros(repetitions, dtype=int)
    n_total = int(math.ceil(max_challenger / share * 1.2))
    boundary = math.log(1 / alpha)
    for r in range(repetitions):
        to_b = rng.random(n_total) < share
        loss = np.where(to_b, rng.random(n_total) < loss_challenger, rng.random(n_total) < loss_champion)
        loss = loss.astype(float)
        cum = {
            arm: (np.cumsum(mask), np.cumsum(loss * mask), np.cumsum(loss * loss * mask))
            for arm, mask in (("a", ~to_b), ("b", to_b))
        }
        pos_b = np.flatnonzero(to_b)[every - 1 : max_challenger : every]
        n_a, s_a, q_a = (c[pos_b].astype(float) for c in cum["a"])
        n_b, s_b, q_b = (c[pos_b].astype(float) for c in cum["b"])
        llr, d = _llr_vector(np.maximum(n_a, 1), s_a, q_a, n_b, s_b, q_b, tau)
        crossed = (llr >= boundary) & (n_a >= min_samples) & (n_b >= min_samples)
        hit = np.flatnonzero(crossed)
        if len(hit):
            decisions[r] = 1 if d[hit[0]] < 0 else -1
            seen[r] = pos_b[hit[0]] + 1
        else:
            seen[r] = pos_b[-1] + 1 if len(pos_b) else n_total
    return decisions, seen
