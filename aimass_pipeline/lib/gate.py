"""The promotion gate: a challenger replaces the champion only on evidence from the same frozen holdout."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None
    floor: float
    min_delta: float

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    challenger: float,
    champion: float | None,
    *,
    metric: str = "roc_auc",
    floor: float = 0.75,
    min_delta: float = 0.0,
) -> GateDecision:
    """Promote when the challenger clears the floor and beats the champion (scored on the same rows)
    by at least ``min_delta``; the first model only has to clear the floor."""
    args = dict(metric=metric, challenger=challenger, champion=champion, floor=floor, min_delta=min_delta)
    if challenger < floor:
        return GateDecision(False, f"{metric} {challenger:.4f} is below the floor {floor:.4f}", **args)
    if champion is None:
        return GateDecision(
            True, f"first model; {metric} {challenger:.4f} clears the floor {floor:.4f}", **args
        )
    if challenger >= champion + min_delta and challenger > champion:
        return GateDecision(
            True,
            f"{metric} {challenger:.4f} beats the champion's {champion:.4f} by >= {min_delta:.4f}",
            **args,
        )
    return GateDecision(
        False,
        f"{metric} {challenger:.4f} does not beat the champion's {champion:.4f} by > {min_delta:.4f}",
        **args,
    )
