"""The canary's verdict: the registered sequential test on labelled predictions, plus guard metrics.

Champion rows are the served (role ``served``) predictions of the champion version the canary started
against; challenger rows the ``canary`` ones; both since the canary started, joined to their outcomes by
``prediction_id``. The guards need no labels: the canary's error rate and p99 latency (counted by every service
worker, ``core.rollout.read_stats``) against the champion's, and the PSI of its probabilities against the
champion's. A breached guard stops the canary whatever the test says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aimass_pipeline.core.rollout import Arm
from aimass_pipeline.rollout.logs import psi
from aimass_pipeline.rollout.sequential import TestState, trajectory

CONTINUE, PROMOTE, STOP = "continue", "promote", "stop"
MIN_GUARD_REQUESTS = 20
MIN_PSI_ROWS = 100


@dataclass(frozen=True)
class CanaryVerdict:
    action: str
    reason: str
    test: TestState | None
    path: list[TestState] = field(default_factory=list)
    guards: dict[str, Any] = field(default_factory=dict)

    def running(self) -> dict[str, Any]:
        """What the status block and the audit trail keep of it."""
        return {
            "action": self.action,
            "reason": self.reason,
            **(self.test.as_dict() if self.test else {}),
            "guards": self.guards,
            # The statistic at each look: the canary_decision asset plots it against the boundary.
            "path": [[s.n_challenger, round(s.log_lr, 4)] for s in self.path],
        }


def per_row_loss(frame: pd.DataFrame, truth: pd.Series, classes: list[str], metric: str) -> np.ndarray:
    """Each labelled prediction's loss (lower is better) under ``metric``."""
    truth = truth.astype(str).to_numpy()
    if metric == "error":
        return (frame["label"].astype(str).to_numpy() != truth).astype(float)
    if len(classes) == 2:
        positive = frame["probability"].astype(float).to_numpy()
        p_true = np.where(truth == classes[1], positive, 1 - positive)
        if metric == "brier":
            return 2 * (1 - p_true) ** 2  # summed over both classes, as in the multiclass case
    else:
        probs = [json.loads(p) for p in frame["probabilities"]]
        p_true = np.array([row.get(t, 0.0) for row, t in zip(probs, truth, strict=True)], dtype=float)
        if metric == "brier":
            return np.array(
                [
                    sum((row.get(c, 0.0) - (c == t)) ** 2 for c in classes)
                    for row, t in zip(probs, truth, strict=True)
                ]
            )
    if metric == "log_loss":
        return -np.log(np.clip(p_true, 1e-15, 1.0))
    raise ValueError(f"unknown canary metric {metric!r}; expected brier, log_loss or error")


def arms_of(predictions: pd.DataFrame, arm: Arm) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(champion rows, canary rows) logged since the canary started."""
    since = predictions["ts"] >= pd.Timestamp(arm.started_at)
    role = (
        predictions["role"].astype(str) if "role" in predictions else pd.Series("served", predictions.index)
    )
    version = predictions["model_version"].astype(str)
    champion = predictions[since & (role == "served") & (version == str(arm.champion_version))]
    canary = predictions[since & (role == "canary") & (version == str(arm.version))]
    return champion, canary


def _guards(
    champion: pd.DataFrame, canary: pd.DataFrame, stats: list[dict[str, Any]], arm: Arm
) -> dict[str, Any]:
    rule = arm.rule
    assert rule is not None
    guards: dict[str, Any] = {"breached": []}
    totals = {role: {"requests": 0, "errors": 0, "p99_ms": 0.0} for role in ("served", "canary")}
    for writer in stats:
        for role, row in writer.get("arms", {}).items():
            if role in totals:
                totals[role]["requests"] += int(row["requests"])
                totals[role]["errors"] += int(row["errors"])
                # The worst worker's p99: conservative, and a guard should be.
                totals[role]["p99_ms"] = max(totals[role]["p99_ms"], float(row.get("p99_ms") or 0.0))
    refused = sorted({str(w["load_error"]) for w in stats if w.get("load_error")})
    if refused:
        guards["breached"].append(f"canary version could not be loaded: {refused[0]}")
    served, can = totals["served"], totals["canary"]
    guards["requests"] = totals
    if can["requests"] >= MIN_GUARD_REQUESTS:
        rate = lambda t: t["errors"] / t["requests"] if t["requests"] else 0.0  # noqa: E731
        increase = rate(can) - rate(served)
        guards["error_rate_increase"] = increase
        if increase > rule.max_error_rate_increase:
            guards["breached"].append(
                f"error rate {rate(can):.1%} vs champion {rate(served):.1%} (allowed +{rule.max_error_rate_increase:.1%})"
            )
        if served["requests"] >= MIN_GUARD_REQUESTS and served["p99_ms"] > 0:
            ratio = can["p99_ms"] / served["p99_ms"]
            guards["latency_ratio"] = ratio
            if ratio > rule.max_latency_ratio:
                guards["breached"].append(
                    f"p99 latency {can['p99_ms']:.1f} ms vs champion {served['p99_ms']:.1f} ms "
                    f"(allowed x{rule.max_latency_ratio})"
                )
    if len(canary) >= MIN_PSI_ROWS and len(champion) >= MIN_PSI_ROWS:
        shift = psi(champion["probability"].to_numpy(float), canary["probability"].to_numpy(float))
        guards["probability_psi"] = shift
        if shift > rule.max_probability_psi:
            guards["breached"].append(
                f"probability PSI {shift:.3f} vs champion (allowed {rule.max_probability_psi})"
            )
    return guards


def evaluate_canary(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    target: str,
    classes: list[str],
    arm: Arm,
    stats: list[dict[str, Any]] | None = None,
) -> CanaryVerdict:
    """Decide on ``arm`` (a running canary) from the logged predictions, the landed labels and the workers'
    counters: promote when the test concludes for it, stop when against, when a guard is breached, or when
    ``max_samples`` labelled canary predictions brought no conclusion; else continue."""
    rule = arm.rule
    if rule is None:
        raise ValueError(f"canary {arm.id} of version {arm.version} has no registered decision rule")
    champion, canary = arms_of(predictions, arm)
    guards = _guards(champion, canary, stats or [], arm)
    truth = labels.drop_duplicates("prediction_id").set_index("prediction_id")[target]
    losses, orders = [], []
    for rows in (champion, canary):
        matched = rows[rows["prediction_id"].isin(truth.index)]
        losses.append(per_row_loss(matched, truth.loc[matched["prediction_id"]], classes, rule.metric))
        orders.append(pd.to_datetime(matched["ts"], utc=True).astype("int64").to_numpy())
    path = trajectory(
        losses[0], losses[1], orders[0], orders[1], rule.alpha, rule.min_effect, rule.min_samples
    )
    test = path[-1] if path else None
    if guards["breached"]:
        return CanaryVerdict(STOP, "guard breached: " + "; ".join(guards["breached"]), test, path, guards)
    if test is not None and test.crossed:
        better = test.estimate < 0
        return CanaryVerdict(
            PROMOTE if better else STOP,
            f"mSPRT crossed: {rule.metric} {'lower' if better else 'higher'} by {abs(test.estimate):.4f} "
            f"(log LR {test.log_lr:.2f} >= {test.boundary:.2f}, always-valid p {test.p_value:.4g})",
            test,
            path,
            guards,
        )
    n = 0 if test is None else test.n_challenger
    if n >= rule.max_samples:
        return CanaryVerdict(
            STOP, f"no conclusion after {n} labelled canary predictions (max_samples)", test, path, guards
        )
    stat = "n/a" if test is None else f"{test.log_lr:.2f} of {test.boundary:.2f}"
    return CanaryVerdict(CONTINUE, f"{n} labelled canary predictions, log LR {stat}", test, path, guards)


def boundary_png(running: dict[str, Any]) -> bytes | None:
    """The running statistic (log LR) against its boundary, by labelled challenger predictions."""
    path = running.get("path") or []
    if not path or "boundary" not in running:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(
        [p[0] for p in path], [p[1] for p in path], marker=".", label="log mixture LR (running statistic)"
    )
    ax.axhline(
        running["boundary"],
        color="red",
        linestyle="--",
        label=f"boundary log(1/alpha) = {running['boundary']:.2f}",
    )
    ax.set_xlabel("labelled canary predictions")
    ax.set_ylabel("log LR")
    ax.set_title(f"canary: {running.get('action')}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()
