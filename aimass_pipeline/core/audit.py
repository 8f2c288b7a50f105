"""The audit trail: who did what to which use case, when, and on what evidence.

One JSON object per event under ``audit/<use case>/`` in the lake, named ``<UTC time>-<id>.json``: objects are
written once and never changed, so two processes recording at once never lose each other's event (an append to a
shared file on S3 would). Each event carries the sha256 of its own canonical body: ``verify`` finds an event
edited after the fact. The key of an API client is never recorded, only its id (``who``).

Under ``AIMASS_ENV=prod`` each event is also inserted into PostgreSQL (``pg_url``, see core.audit_pg), and
``read`` answers from both, one event per id: a trail that lost events in one store still has them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any, Protocol

PROMOTE = "promote"
ROLLBACK = "rollback"
GATE = "gate_decision"
SWAP = "swap"
QUARANTINE_RETRY = "quarantine_retry"
SPEC_CHANGE = "spec_change"
ERASE = "erase"
RETIRE = "retire"
UNRETIRE = "unretire"
SHADOW = "shadow"
CANARY = "canary"
ACTIONS = (
    PROMOTE,
    ROLLBACK,
    GATE,
    SWAP,
    QUARANTINE_RETRY,
    SPEC_CHANGE,
    ERASE,
    RETIRE,
    UNRETIRE,
    SHADOW,
    CANARY,
)


class AuditStore(Protocol):
    """What the trail needs of the lake (core.lake.Lake satisfies it)."""

    fs: Any

    def path(self, *parts: str) -> str: ...

    def write_bytes(self, data: bytes, *parts: str) -> str: ...


class AuditTampered(RuntimeError):
    """An event's body no longer matches the hash recorded with it."""


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def record(
    lake: AuditStore,
    *,
    action: str,
    use_case: str,
    evidence: dict | None = None,
    who: str | None = None,
    at: dt.datetime | None = None,
    pg_url: str | None = None,
) -> dict:
    """Append one event and return it. ``who`` defaults to the operating-system user of this process; with
    ``pg_url`` the event is also inserted there (an unreachable database raises, after the lake has it)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    body = {
        "id": uuid.uuid4().hex,
        "at": when.isoformat(timespec="microseconds"),
        "action": action,
        "use_case": use_case,
        "who": who or _os_user(),
        "evidence": evidence or {},
    }
    event = {**body, "sha256": _digest(body)}
    name = f"{when.strftime('%Y%m%dT%H%M%S%fZ')}-{body['id']}.json"
    lake.write_bytes(json.dumps(event, sort_keys=True, default=str).encode(), "audit", use_case, name)
    if pg_url:
        from aimass_pipeline.core import audit_pg

        audit_pg.insert(pg_url, event)
    return event


def read(
    lake: AuditStore, use_case: str, *, until: dt.datetime | None = None, pg_url: str | None = None
) -> list[dict]:
    """The use case's events, oldest first; with ``until``, only those at or before it; with ``pg_url``, the
    union of the lake's and PostgreSQL's events (one per id)."""
    folder = lake.path("audit", use_case)
    try:
        names = sorted(p for p in lake.fs.ls(folder, detail=False) if p.endswith(".json"))
    except FileNotFoundError:
        names = []
    events = [json.loads(lake.fs.cat_file(name)) for name in names]
    if pg_url:
        from aimass_pipeline.core import audit_pg

        known = {e["id"] for e in events}
        events += [e for e in audit_pg.select(pg_url, use_case) if e["id"] not in known]
    if until is not None:
        bound = until.astimezone(dt.UTC)
        events = [e for e in events if dt.datetime.fromisoformat(e["at"]) <= bound]
    return sorted(events, key=lambda e: (e["at"], e["id"]))


def verify(events: list[dict]) -> None:
    """Raise AuditTampered naming the first event whose body was changed after it was recorded."""
    for event in events:
        body = {k: v for k, v in event.items() if k != "sha256"}
        if _digest(body) != event.get("sha256"):
            raise AuditTampered(
                f"audit event {event.get('id')} at {event.get('at')} was changed after recording"
            )


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _moved_to(event: dict) -> str | None:
    """The version an event made champion: an operator's promote or rollback, or a gate that promoted."""
    evidence = event.get("evidence") or {}
    # A gate event carries the gate's decision fields (evaluation.gate.GateDecision): ``promote`` is its verdict.
    if event["action"] in (PROMOTE, ROLLBACK) or (event["action"] == GATE and evidence.get("promote")):
        return str(evidence["version"])
    return None


def champion_at(events: list[dict], at: dt.datetime) -> dict | None:
    """Which version was champion at ``at`` by the trail, and why: the event that made it champion then
    (``became``), the gate decision that first judged that version (``gate``), and the last swap each
    service recorded by then (``served``: who -> version). None when nothing had made a champion by then."""
    bound = at.astimezone(dt.UTC)
    known = [e for e in events if dt.datetime.fromisoformat(e["at"]) <= bound]
    moves = [e for e in known if _moved_to(e) is not None]
    if not moves:
        return None
    became = moves[-1]
    version = _moved_to(became)
    gate = next(
        (e for e in known if e["action"] == GATE and str(e["evidence"].get("version")) == version), None
    )
    served = {e["who"]: str(e["evidence"]["to"]) for e in known if e["action"] == SWAP}
    return {"version": version, "since": became["at"], "became": became, "gate": gate, "served": served}
