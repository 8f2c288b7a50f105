"""`aimass history USE_CASE`: the use case's registered versions, newest first: aliases, the gate's decision
(the `gate.*` tags the evaluation stage writes) and who promoted it, read from the registry directly."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from aimass_pipeline.cli import stores
from aimass_pipeline.cli.common import spec_or_exit
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
                "promoted_by": tags.get("promoted_by", "gate" if gate.get("promote") == "true" else None),
            }
        )
    return entries


def cmd_history(args: argparse.Namespace) -> int:
    settings = load_settings().prepare()
    spec = spec_or_exit(settings.use_case_specs(), args.use_case, settings.spec_errors())
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
