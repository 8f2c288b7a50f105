"""One look at a running canary, and acting on it: promote through the registry or stop, recorded in the
audit trail. The canary sensor calls ``look`` then ``act``; the ``canary_decision`` asset calls ``look``."""

from __future__ import annotations

import logging
from typing import Any

from aimass_pipeline.core import audit, rollout
from aimass_pipeline.core.aliases import PROMOTED_BY
from aimass_pipeline.core.registry import PromotionConflict, promote
from aimass_pipeline.rollout.canary import PROMOTE, STOP, CanaryVerdict, evaluate_canary
from aimass_pipeline.rollout.logs import read_log, read_outcomes

log = logging.getLogger(__name__)
SENSOR = "aimass canary sensor"


def look(
    lake: Any, labels_folder: Any, use_case: str, target: str, classes: list[str]
) -> tuple[rollout.Arm, CanaryVerdict] | None:
    """The running canary and its verdict now; None when no canary runs. The running statistic is kept in the
    serving state for `aimass status`."""
    state = rollout.read_state(lake, use_case)
    arm = state.canary
    if arm is None:
        return None
    predictions = read_log(lake.fs, lake.root, use_case, arm.started_at)
    labels = read_outcomes(labels_folder, target, classes)
    verdict = evaluate_canary(
        predictions, labels, target, classes, arm, rollout.read_stats(lake, use_case, arm.id)
    )
    fresh = rollout.read_state(lake, use_case)
    if fresh.canary is not None and fresh.canary.id == arm.id:
        fresh.running = verdict.running()
        rollout.write_state(lake, fresh)
    return arm, verdict


def act(lake: Any, client: Any, use_case: str, arm: rollout.Arm, verdict: CanaryVerdict) -> str:
    """Promote (compare-and-set on the champion the canary started against) or stop; returns what was done."""
    running = verdict.running()
    if verdict.action == PROMOTE:
        try:
            promote(client, use_case, arm.version, expected=arm.champion_version)
        except PromotionConflict as exc:
            rollout.end_canary(lake, use_case, STOP, f"not promoted: {exc}", running, who=SENSOR)
            return "stopped: the champion moved during the canary"
        client.set_model_version_tag(use_case, arm.version, PROMOTED_BY, "canary")
        audit.record(
            lake,
            action=audit.PROMOTE,
            use_case=use_case,
            who=SENSOR,
            evidence={
                "version": arm.version,
                "former": arm.champion_version,
                "canary": arm.id,
                "reason": verdict.reason,
                "test": running,
            },
        )
        rollout.end_canary(lake, use_case, PROMOTE, verdict.reason, running, who=SENSOR)
        log.info("%s: canary version %s promoted: %s", use_case, arm.version, verdict.reason)
        return f"promoted version {arm.version}"
    if verdict.action == STOP:
        rollout.end_canary(lake, use_case, STOP, verdict.reason, running, who=SENSOR)
        log.warning("%s: canary version %s stopped: %s", use_case, arm.version, verdict.reason)
        return f"stopped version {arm.version}"
    return "continue"
