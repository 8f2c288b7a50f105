"""The gate times the champion as it will be served (compiled), against the shipped 20 ms budget, and keeps
the spread of its latency figure as evidence."""

import logging

import numpy as np

from aimass_pipeline.core.latency import single_row_latency
from aimass_pipeline.core.specs import load_spec
from aimass_pipeline.evaluation.gate import decide
from aimass_pipeline.evaluation.served_variant import served_variant
from aimass_pipeline.models.compile import CompiledModel
from aimass_pipeline.models.ensemble import SoftVotingEnsemble
from aimass_pipeline_tests.models.test_compile import SPECS, _member, credit  # noqa: F401 - the fixture


def test_the_gate_times_the_compiled_champion_within_the_shipped_budget(credit) -> None:  # noqa: F811
    X, y, holdout, layout = credit
    members = [_member("logreg", layout, X, y), _member("random_forest", layout, X, y, n_estimators=300)]
    ensemble = SoftVotingEnsemble(members=members, names=["lr", "rf"]).fit(X, y)
    budget = load_spec(SPECS / "credit_risk.yaml").gate.max_latency_ms
    assert budget == 20, budget

    served, evidence = served_variant(ensemble, holdout, logging.getLogger(__name__))

    assert isinstance(served, CompiledModel) and evidence["compiled"] == 1.0, evidence
    assert evidence["compiled_checked_rows"] == len(holdout), evidence
    figure = single_row_latency(served, holdout)
    y_hold = np.zeros(len(holdout), dtype=int)
    y_hold[::3] = 1
    decision = decide(
        metric="roc_auc",
        y_true=y_hold,
        challenger_proba=ensemble.predict_proba(holdout),
        champion_proba=None,
        floor=0.0,
        challenger_latency_ms=figure.median_ms,
        max_latency_ms=budget,
        challenger_latency_spread_ms=(figure.p10_ms, figure.p90_ms),
    )
    assert figure.median_ms <= budget and "latency" not in decision.reason, (figure, decision.reason)
    tags = decision.as_tags()
    assert float(tags["gate.challenger_latency_p90_ms"]) >= float(tags["gate.challenger_latency_ms"]), tags


def test_a_refusal_for_latency_names_the_spread() -> None:
    y = np.array([0, 1] * 20)
    decision = decide(
        metric="roc_auc",
        y_true=y,
        challenger_proba=np.where(y == 1, 0.9, 0.1),
        champion_proba=None,
        floor=0.5,
        challenger_latency_ms=30.0,
        max_latency_ms=20.0,
        challenger_latency_spread_ms=(25.0, 41.0),
    )
    assert not decision.promote
    assert "p10-p90 25.000-41.000 ms" in decision.reason, decision.reason
