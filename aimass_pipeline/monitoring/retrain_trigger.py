"""When monitoring's verdicts launch a retraining: each recommending report at most once, and never twice
within the cool-down, so a persistent drift cannot queue run after run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Signal:
    """The latest materialisation of one monitoring asset."""

    asset: str
    storage_id: int
    run_id: str
    recommended: bool
    reason: str


@dataclass(frozen=True)
class TriggerState:
    """The sensor's cursor: when it last launched, and the reports (asset -> storage id) it has acted on."""

    last_launch: float | None = None
    acted_on: dict[str, int] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps({"last_launch": self.last_launch, "acted_on": self.acted_on}, sort_keys=True)

    @classmethod
    def loads(cls, cursor: str | None) -> TriggerState:
        if not cursor:
            return cls()
        raw = json.loads(cursor)
        return cls(raw.get("last_launch"), {k: int(v) for k, v in raw.get("acted_on", {}).items()})


@dataclass(frozen=True)
class Decision:
    launch: bool
    reason: str
    state: TriggerState
    trigger: Signal | None = None


def decide(signals: list[Signal], state: TriggerState, now: float, cooldown_s: float) -> Decision:
    """Launch when a report that recommends retraining has not been acted on and the cool-down is over;
    only each asset's latest report counts, so a drift that has since cleared launches nothing."""
    recommending = [s for s in signals if s.recommended]
    if not recommending:
        latest = "; ".join(f"{s.asset}: {s.reason}" for s in signals) or "no monitoring report yet"
        return Decision(False, f"no report recommends retraining ({latest})", state)
    fresh = [s for s in recommending if s.storage_id > state.acted_on.get(s.asset, -1)]
    if not fresh:
        acted = ", ".join(f"{s.asset} (run {s.run_id[:8]})" for s in recommending)
        return Decision(False, f"already acted on the latest drift reports: {acted}", state)
    if state.last_launch is not None and now - state.last_launch < cooldown_s:
        left = cooldown_s - (now - state.last_launch)
        return Decision(
            False,
            f"cool-down: last retraining launched {now - state.last_launch:.0f}s ago, {left:.0f}s of "
            f"{cooldown_s:.0f}s left; pending: {', '.join(s.asset for s in fresh)}",
            state,
        )
    trigger = max(fresh, key=lambda s: s.storage_id)
    acted_on = {**state.acted_on, **{s.asset: s.storage_id for s in recommending}}
    return Decision(True, f"{trigger.asset}: {trigger.reason}", TriggerState(now, acted_on), trigger)
