"""The CLI's side of the audit trail (core/audit.py): record an operator's action in every store this
deployment keeps it in (the lake; PostgreSQL too under prod), and notice a use case's spec changing."""

from __future__ import annotations

import hashlib

from aimass_pipeline.core import audit
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.settings import Settings


def lake_of(settings: Settings) -> Lake:
    return Lake(settings.lake_url, settings.storage_options)


def note(settings: Settings, action: str, use_case: str, evidence: dict) -> dict:
    """Record one action by this process's OS user; returns the event."""
    return audit.record(
        lake_of(settings), action=action, use_case=use_case, evidence=evidence, pg_url=settings.audit_pg_url
    )


def events(settings: Settings, use_case: str, until=None) -> list[dict]:
    return audit.read(lake_of(settings), use_case, until=until, pg_url=settings.audit_pg_url)


def record_move(
    settings: Settings, action: str, use_case: str, champion, previous, reason: str | None
) -> dict:
    """An operator's promote or rollback: the champion it made, the one it replaced, and the new champion's
    gate figures (its ``gate.*`` and ``holdout.*`` registry tags) as the evidence it stood on."""
    tags = dict(champion.tags or {})
    evidence = {
        "version": str(champion.version),
        "replaced": str(previous.version) if previous is not None else None,
        "reason": reason,
        "gate": {k: v for k, v in sorted(tags.items()) if k.startswith(("gate.", "holdout."))},
    }
    return note(settings, action, use_case, evidence)


def spec_sha256(spec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


def record_spec_changes(settings: Settings) -> list[dict]:
    """A ``spec_change`` event for every loaded use case whose spec differs from the last one recorded (or
    was never recorded): called where runs start, so every spec a run used is on the trail."""
    recorded = []
    for name, spec in settings.use_case_specs().items():
        digest = spec_sha256(spec)
        changes = [e for e in events(settings, name) if e["action"] == audit.SPEC_CHANGE]
        last = changes[-1]["evidence"].get("sha256") if changes else None
        if digest != last:
            evidence = {"sha256": digest, "previous_sha256": last, "spec": spec.model_dump(mode="json")}
            recorded.append(note(settings, audit.SPEC_CHANGE, name, evidence))
    return recorded
