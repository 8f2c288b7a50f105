"""The gate when the champion may have been trained under another contract than the challenger.

The champion is scored on its own columns of the same holdout rows (every comparison stays paired); when the
holdout lacks a column it needs, no paired evidence exists and the gate refuses, saying why, instead of
failing the run. And a retried registration finds the version its first attempt registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.version_contract import incompatibilities, version_contract
from aimass_pipeline.evaluation.gate import GateDecision, decide, incomparable


def judge(
    *,
    use_case: str,
    contract: Contract,
    champion: Any,
    holdout: pd.DataFrame,
    seed: int,
    load: Callable[[str], Any],
    **gate: Any,
) -> GateDecision:
    """The gate's decision for a challenger trained under ``contract`` against ``champion`` (a registry
    ModelVersion, or None for the first model), loaded by ``load`` (which verifies its signature); ``gate`` holds ``decide``'s other arguments."""
    if champion is None:
        return decide(champion_proba=None, seed=seed, **gate)
    # A version registered before versions carried their contract was trained under the current one.
    trained_under = version_contract(champion.tags) or contract
    problems = incompatibilities(contract, trained_under)
    if problems:
        return incomparable(
            reason=f"the champion (version {champion.version}) was trained under another contract and cannot "
            f"be scored on this holdout: {'; '.join(problems)}; review and promote by hand "
            f"(aimass promote {use_case} <version>)",
            **gate,
        )
    model = load(f"models:/{use_case}/{champion.version}")
    proba = np.asarray(model.predict_proba(holdout[trained_under.feature_names]), dtype=float)
    return decide(champion_proba=proba, seed=seed, **gate)
