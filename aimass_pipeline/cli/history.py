"""`aimass history USE_CASE`: the use case's registered versions, newest first: aliases, the gate's decision
(the `gate.*` tags the evaluation stage writes) and who promoted it, read from the registry directly."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from aimass_pipeline.cli import stores
from aimass_pipeline.cli.common import spec_or_exit
from aimass_pipeline.core.aliases import PROMOTED_BY
from aimass_pipeline.settings import load_settings

HISTORY_SCHEMA_VERSION = 1


def _when(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None


def collect_history(settings, use_case: str) -> list[dict]:
    entries = []
    for version in reversed(stores.model_versions(settings, use_case)):
        tags = version["tags"]
        gate = {k.split(".", 1)[1]: v for k, v in sorted(tags.items()) if k.startswith("gate.")}
        entries.append(
            {
                "version": version["version"],
                "aliases": version["aliases"],
                "family": tags.get("aimass.family"),
                "run_id": version["run_id"],
                "registered_at": _when(version["creation_time_ms"]),
                "holdout_metrics": {
                    k.split(".", 1)[1]: float(v) for k, v in tags.items() if k.startswith("holdout.")
                },
                "gate": gate,
                "promoted_by": tags.get(PROMOTED_BY, "gate" if gate.get("promote") == "true" else None),
            }
        )
    return entries


def _instant(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SystemExit(f"aimass: --at {text!r} is not an ISO time (e.g. 2026-12-06T15:00:00Z)") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # a time without a zone is UTC


def _why(event: dict) -> str:
    evidence = event["evidence"]
    if event["action"] == "gate_decision":
        return f"the gate promoted it: {evidence.get('reason')}"
    reason = f" ({evidence['reason']})" if evidence.get("reason") else ""
    return f"{event['who']} ran {event['action']}{reason}, replacing version {evidence.get('replaced')}"


def history_at(settings, use_case: str, text: str, as_json: bool) -> int:
    """`--at`: the champion at that time by the audit trail, the event that made it so and its evidence."""
    from aimass_pipeline.cli.audit_trail import events
    from aimass_pipeline.core.audit import champion_at

    at = _instant(text)
    answer = champion_at(events(settings, use_case), at)
    if as_json:
        report = {"schema_version": HISTORY_SCHEMA_VERSION, "use_case": use_case, "at": at.isoformat()}
        print(json.dumps(report | {"champion": answer}, indent=2, sort_keys=True, default=str))
        return 0
    if answer is None:
        print(f"{use_case}: no champion at {at.isoformat()} by the audit trail")
        return 0
    print(
        f"{use_case} at {at.isoformat()}: version {answer['version']} was champion (since {answer['since']})"
    )
    print(f"  why: {_why(answer['became'])}")
    if answer["gate"] is not None and answer["gate"] is not answer["became"]:
        print(f"  its gate decision ({answer['gate']['at']}): {answer['gate']['evidence'].get('reason')}")
    for who, version in sorted(answer["served"].items()):
        print(f"  service {who} served version {version}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    settings = load_settings().prepare()
    spec = spec_or_exit(settings.use_case_specs(), args.use_case, settings.spec_errors())
    if args.at:
        return history_at(settings, args.use_case, args.at, args.json)
    entries = collect_history(settings, args.use_case)
    if args.json:
        report = {"schema_version": HISTORY_SCHEMA_VERSION, "use_case": args.use_case, "versions": entries}
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    if not entries:
        print(f"{args.use_case}: no registered version yet")
    for entry in entries:
        aliases = f" [{', '.join(entry['aliases'])}]" if entry["aliases"] else ""
        value = entry["holdout_metrics"].get(spec.metric)
        metric = f"{spec.metric} {value:.4f}" if value is not None else f"{spec.metric} ?"
        gate = entry["gate"]
        decision = gate.get("reason") or ("promoted" if gate.get("promote") == "true" else "no gate decision")
        print(
            f"- version {entry['version']}{aliases} {entry['family'] or '?'}, registered {entry['registered_at']}; "
            f"holdout {metric}; gate: {decision}"
            + (f"; promoted by {entry['promoted_by']}" if entry["promoted_by"] else "")
        )
    return 0
