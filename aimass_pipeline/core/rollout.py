"""A use case's serving state beyond its champion: a shadow version, a canary with its decision rule.

The state is one JSON object in the lake, ``serving_state/<use case>.json``, written by `aimass shadow` /
`aimass canary` (and by the canary sensor when it decides) and polled by the running services. A canary's
decision rule (metric, minimum effect, alpha, largest sample) is fixed when the canary starts, stored with it
and in the audit trail: the test that later decides cannot be tuned to the data it sees.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aimass_pipeline.core import audit

STATE_FOLDER = "serving_state"
STATS_FOLDER = "rollout_stats"
METRICS = ("brier", "log_loss", "error")


class DecisionRule(BaseModel):
    """How the canary is judged, registered before it starts. Losses are per labelled prediction (lower is
    better): ``brier`` (squared error of the probability), ``log_loss``, ``error`` (wrong label = 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Literal["brier", "log_loss", "error"] = "brier"
    min_effect: float = Field(
        0.02, gt=0, description="smallest loss difference worth detecting (mixture scale)"
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="false decision rate of the always-valid test")
    max_samples: int = Field(2000, ge=10, description="labelled canary predictions after which it stops")
    min_samples: int = Field(30, ge=5, description="labelled predictions per arm before the test may decide")
    # Guards: breached -> the canary stops at once, whatever the test says.
    max_error_rate_increase: float = Field(0.02, ge=0, description="canary error rate minus champion's")
    max_latency_ratio: float = Field(3.0, gt=1, description="canary p99 / champion p99")
    max_probability_psi: float = Field(
        1.0, gt=0, description="PSI of canary vs champion probabilities: a broken model, not a better one"
    )


class Arm(BaseModel):
    """A version answering (canary) or scoring silently (shadow) a share of the traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    version: str
    share: float = Field(ge=0, le=100)
    started_at: str
    champion_version: str | None = None
    rule: DecisionRule | None = None


class ServingState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use_case: str
    shadow: Arm | None = None
    canary: Arm | None = None
    # The canary's latest evaluation (statistic, boundary, p-value, counts) and the last decision taken.
    running: dict[str, Any] | None = None
    last_decision: dict[str, Any] | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def read_state(lake: Any, use_case: str) -> ServingState:
    """The state in the lake; a use case never put in shadow or canary has an empty one."""
    parts = (STATE_FOLDER, f"{use_case}.json")
    if not lake.exists(*parts):
        return ServingState(use_case=use_case)
    try:
        return ServingState.model_validate_json(lake.read_bytes(*parts))
    except ValueError as exc:
        raise ValueError(f"{lake.uri(*parts)}: not a serving state: {exc}") from exc


def read_state_at(lake_url: str, storage_options: dict | None, use_case: str) -> ServingState:
    """``read_state`` from the lake's URL alone: `aimass status` answers without importing pandas (core.lake)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(lake_url, **(storage_options or {}))
    path = "/".join([root.rstrip("/"), STATE_FOLDER, f"{use_case}.json"])
    if not fs.exists(path):
        return ServingState(use_case=use_case)
    try:
        return ServingState.model_validate_json(fs.cat_file(path))
    except ValueError as exc:
        raise ValueError(f"{path}: not a serving state: {exc}") from exc


def write_state(lake: Any, state: ServingState) -> None:
    lake.write_bytes(state.model_dump_json(indent=2).encode(), STATE_FOLDER, f"{state.use_case}.json")


def _arm(version: str, share: float, champion: str | None, rule: DecisionRule | None = None) -> Arm:
    return Arm(
        id=uuid.uuid4().hex[:12],
        version=str(version),
        share=share,
        started_at=_now(),
        champion_version=champion,
        rule=rule,
    )


def start_shadow(lake: Any, use_case: str, version: str, share: float, champion: str | None) -> ServingState:
    state = read_state(lake, use_case)
    state.shadow = _arm(version, share, champion)
    write_state(lake, state)
    audit.record(
        lake, action=audit.SHADOW, use_case=use_case, evidence={"step": "start", **state.shadow.model_dump()}
    )
    return state


def stop_shadow(lake: Any, use_case: str, reason: str) -> ServingState:
    state = read_state(lake, use_case)
    if state.shadow is None:
        raise LookupError(f"{use_case}: no shadow is running")
    evidence = {"step": "stop", "reason": reason, **state.shadow.model_dump()}
    state.shadow = None
    write_state(lake, state)
    audit.record(lake, action=audit.SHADOW, use_case=use_case, evidence=evidence)
    return state


def start_canary(
    lake: Any, use_case: str, version: str, share: float, champion: str | None, rule: DecisionRule
) -> ServingState:
    """Register the rule and start routing ``share`` % of the entities to ``version``."""
    state = read_state(lake, use_case)
    if state.canary is not None:
        raise ValueError(
            f"{use_case}: canary of version {state.canary.version} already running; stop it first "
            f"(`aimass canary {use_case} --stop`)"
        )
    if champion is not None and str(champion) == str(version):
        raise ValueError(f"{use_case}: version {version} is already the champion")
    state.canary = _arm(version, share, champion, rule)
    state.running = None
    write_state(lake, state)
    audit.record(
        lake, action=audit.CANARY, use_case=use_case, evidence={"step": "start", **state.canary.model_dump()}
    )
    return state


def end_canary(
    lake: Any,
    use_case: str,
    decision: str,
    reason: str,
    running: dict[str, Any] | None = None,
    who: str | None = None,
) -> ServingState:
    """Take the canary out of the traffic, recording the decision (promote, stop) and the evidence."""
    state = read_state(lake, use_case)
    if state.canary is None:
        raise LookupError(f"{use_case}: no canary is running")
    evidence = {"step": decision, "reason": reason, "running": running, **state.canary.model_dump()}
    state.last_decision = {
        "decision": decision,
        "reason": reason,
        "at": _now(),
        "version": state.canary.version,
    }
    state.canary = None
    state.running = running or state.running
    write_state(lake, state)
    audit.record(lake, action=audit.CANARY, use_case=use_case, evidence=evidence, who=who)
    return state


def serving_summary(state: ServingState) -> dict[str, Any]:
    """The status block: shadow and canary with their shares, the test's running statistic."""

    def arm(a: Arm | None) -> dict[str, Any] | None:
        return None if a is None else {"version": a.version, "share": a.share, "started_at": a.started_at}

    canary = arm(state.canary)
    if canary is not None and state.canary is not None:
        canary["rule"] = state.canary.rule.model_dump() if state.canary.rule else None
        canary["running"] = state.running
    return {"shadow": arm(state.shadow), "canary": canary, "last_decision": state.last_decision}


def stats_parts(use_case: str, arm_id: str, writer: str) -> tuple[str, ...]:
    """Where one service worker writes its per-arm request counters for one canary (guard metrics)."""
    return (STATS_FOLDER, use_case, f"{arm_id}-{writer}.json")


def read_stats(lake: Any, use_case: str, arm_id: str) -> list[dict[str, Any]]:
    folder = lake.path(STATS_FOLDER, use_case)
    try:
        names = [p for p in lake.fs.ls(folder, detail=False) if p.rsplit("/", 1)[-1].startswith(f"{arm_id}-")]
    except FileNotFoundError:
        return []
    return [json.loads(lake.fs.cat_file(name)) for name in sorted(names)]
