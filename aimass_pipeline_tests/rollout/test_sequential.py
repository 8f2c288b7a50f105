"""The mSPRT the canary sensor decides by, simulated: equal models are rarely promoted, a worse one is stopped
and a better one promoted."""

import math

import numpy as np

from aimass_pipeline.rollout.sequential import msprt, simulate_decisions

ALPHA = 0.05
REPETITIONS = 300


def test_equal_models_are_falsely_promoted_at_most_alpha_plus_its_binomial_margin() -> None:
    decisions, _ = simulate_decisions(
        np.random.default_rng(15),
        REPETITIONS,
        0.2,
        0.2,
        share=0.1,
        alpha=ALPHA,
        tau=0.05,
        max_challenger=2000,
    )
    margin = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPETITIONS)
    false_promotion = float(np.mean(decisions == 1))
    assert false_promotion <= ALPHA + margin, false_promotion
    # Always valid: any decision at all (either way) stays within alpha too.
    assert float(np.mean(decisions != 0)) <= ALPHA + margin


def test_a_worse_challenger_is_stopped_and_a_better_one_promoted() -> None:
    rng = np.random.default_rng(16)
    worse, _ = simulate_decisions(rng, 40, 0.2, 0.3, share=0.1, alpha=ALPHA, tau=0.05, max_challenger=2000)
    better, seen = simulate_decisions(
        rng, 40, 0.2, 0.12, share=0.1, alpha=ALPHA, tau=0.05, max_challenger=2000
    )
    assert np.mean(worse == -1) >= 0.9 and not np.any(worse == 1)
    assert np.mean(better == 1) >= 0.9 and not np.any(better == -1)
    assert np.median(seen[better == 1]) < 20_000


def test_the_p_value_never_rises_and_too_few_samples_never_decide() -> None:
    rng = np.random.default_rng(17)
    a, b = rng.random(400) < 0.2, rng.random(60) < 0.6
    early = msprt(a[:20], b[:20], ALPHA, 0.05, min_samples=30)
    assert not early.crossed and early.p_value == 1.0
    state = msprt(a, b, ALPHA, 0.05, min_samples=30, p_before=0.5)
    assert state.crossed and state.estimate > 0 and state.p_value <= ALPHA
    assert msprt(a, a[:60], ALPHA, 0.05, 30, p_before=0.01).p_value == 0.01
