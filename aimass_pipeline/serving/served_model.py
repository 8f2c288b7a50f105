"""A registered version as a service holds it, and the vetting it passes before it may answer requests.

Before a swap the new version is vetted (``vet``): the contract it was trained under (a registry tag, see
``core.version_contract``) must be satisfiable by the served request schema, and it must score both its own
input example and a record of the served schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.version_contract import incompatibilities


@dataclass(frozen=True)
class ServedModel:
    model: Any
    name: str
    version: str
    threshold: float
    # The contract the version was trained under (None: registered before versions carried one); the service
    # passes the model only the columns it names.
    contract: Contract | None = None
    # The version's own input example, as MLflow logged it with the model.
    example: pd.DataFrame | None = None

    @property
    def features(self) -> list[str] | None:
        return None if self.contract is None else self.contract.feature_names


def model_frame(served: ServedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``frame`` the served version was trained on, in its order (all of them when the
    version carries no contract)."""
    return frame if served.features is None else frame[served.features]


def record_frame(contract: Contract, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records of ``contract`` as the frame the service scores: numbers float64, categories object."""
    frame = pd.DataFrame(records, columns=contract.feature_names)
    for name in contract.numeric_features:
        frame[name] = pd.to_numeric(frame[name], errors="raise").astype(float)
    for name in [*contract.categorical_features, *contract.text_features]:
        frame[name] = frame[name].astype(object)
    return frame


def vet(served: ServedModel, offered: Contract, record: dict[str, Any]) -> list[str]:
    """Why ``served`` must not answer requests of the ``offered`` schema: its contract needs what the schema
    does not supply, or it cannot score its own input example or ``record`` (a record of the schema).
    Empty when it may serve."""
    needed = served.contract
    problems = [] if needed is None else incompatibilities(offered, needed)
    if problems:
        return [f"trained under another contract: {'; '.join(problems)}"]
    checks = [("a record of the served schema", model_frame(served, record_frame(offered, [record])))]
    if served.example is not None:
        checks.insert(0, ("its own input example", served.example))
    for what, frame in checks:
        try:
            proba = np.asarray(served.model.predict_proba(frame), dtype=float)
        except Exception as exc:  # noqa: BLE001 - whatever a broken model raises is the reason to refuse it
            problems.append(f"cannot score {what}: {type(exc).__name__}: {exc}")
            continue
        if proba.shape != (len(frame), len(offered.classes)) or not np.isfinite(proba).all():
            problems.append(
                f"scores {what} as {proba.shape} non-finite or mis-shaped probabilities, "
                f"expected ({len(frame)}, {len(offered.classes)})"
            )
    return problems


# The refusal of this worker's follower, for the /readyz header: (version, reason) or None.
_REFUSAL: list[tuple[str, str]] = []


def refusal() -> tuple[str, str] | None:
    """The version the champion alias names that this process refused to serve, and why; None if none."""
    return _REFUSAL[0] if _REFUSAL else None


def set_refusal(refused: dict[str, str]) -> None:
    _REFUSAL[:] = list(refused.items())[-1:]


REFUSAL_HEADER = b"x-aimass-champion-refused"


class RefusalHeaderMiddleware:
    """``/readyz`` stays 200 while a refused version is the champion (the old model serves every request) but
    says why in the ``x-aimass-champion-refused`` header: ``<version>: <reason>``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").rstrip("/") != "/readyz" or not _REFUSAL:
            await self.app(scope, receive, send)
            return
        version, reason = _REFUSAL[0]
        value = f"{version}: {reason}".encode("latin-1", "replace")[:2000]

        async def with_header(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REFUSAL_HEADER, value)]}
            await send(message)

        await self.app(scope, receive, with_header)


def refusal_gauge(gauge: Any, use_case: str) -> Any:
    """An ``on_refuse`` for ChampionFollower that sets ``gauge`` (use_case, version, reason) to 1 while a
    version is refused and back to 0 when the alias leaves it."""
    reasons: dict[str, str] = {}

    def on_refuse(version: str, reason: str | None) -> None:
        if reason is None:
            kind = reasons.pop(version, None)
            if kind is not None:
                gauge.labels(use_case, version, kind).set(0)
            return
        kind = "contract" if reason.startswith("trained under another contract") else "broken"
        reasons[version] = kind
        gauge.labels(use_case, version, kind).set(1)

    return on_refuse
