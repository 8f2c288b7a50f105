"""Operator commands: serve, status, promote, rollback (`aimass up` is in cli/up.py)."""

from __future__ import annotations

import argparse
import json

from aimass_pipeline.cli.common import spec_or_exit
from aimass_pipeline.core.audit import PROMOTE, ROLLBACK
from aimass_pipeline.settings import load_settings


def _move_champion(use_case: str, direct, by_client, wait: bool, action: str, reason: str | None) -> int:
    """Apply an operator's alias change, which running services pick up at their next registry poll, then
    build the champion's bento for the next start: in the background, or before returning with ``wait``.
    ``direct(db)`` moves it on the embedded SQLite registry, ``by_client(client)`` through MLflow's client
    (any other store); both return (champion, previous)."""
    from aimass_pipeline.cli.audit_trail import record_move
    from aimass_pipeline.cli.stores import sqlite_registry
    from aimass_pipeline.core.aliases import PromotionConflict

    settings = load_settings().prepare()
    spec_or_exit(settings.use_case_specs(), use_case, settings.spec_errors())
    db = sqlite_registry(settings.mlflow_tracking_uri)
    try:
        champion, previous = direct(db) if db is not None else _by_client(settings, by_client)
    except (LookupError, PromotionConflict) as exc:
        # An operator's typo (no such version, nothing to roll back to) is a message, not a traceback.
        raise SystemExit(f"aimass: {exc}") from exc
    record_move(settings, action, use_case, champion, previous, reason)
    print(
        f"{use_case}: champion = version {champion.version}; previous = "
        f"{previous.version if previous else 'none'}; running services follow within their "
        "AIMASS_CHAMPION_POLL_S (default 10 s)",
        flush=True,
    )
    if wait:
        from aimass_pipeline.deployment.bento import build_champion_bento

        print(f"{use_case}: bento {build_champion_bento(settings, use_case)} built for the next start")
    else:
        from aimass_pipeline.deployment.background import start_bento_build

        log_file = start_bento_build(settings, use_case)
        print(f"{use_case}: its bento is building in the background for the next start (log: {log_file})")
    return 0


def _by_client(settings, move):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    try:
        return move(client)
    except MlflowException as exc:
        raise SystemExit(f"aimass: {exc.message or exc}") from exc


def cmd_promote(args: argparse.Namespace) -> int:
    from aimass_pipeline.cli import registry_writes
    from aimass_pipeline.core.aliases import PROMOTED_BY

    use_case, version = args.use_case, str(args.version)

    def by_client(client):
        from aimass_pipeline.core.registry import champion_version, previous_version, promote

        client.get_model_version(use_case, version)  # a clear error before any alias moves
        # Compare-and-set on what the operator's command saw: a gate landing in between is not overwritten.
        current = champion_version(client, use_case)
        promote(client, use_case, version, expected=str(current.version) if current else None)
        client.set_model_version_tag(use_case, version, PROMOTED_BY, "operator")
        return champion_version(client, use_case), previous_version(client, use_case)

    direct = lambda db: registry_writes.promote(db, use_case, version, by="operator")  # noqa: E731
    return _move_champion(use_case, direct, by_client, args.wait, PROMOTE, args.reason)


def cmd_rollback(args: argparse.Namespace) -> int:
    from aimass_pipeline.cli import registry_writes

    def by_client(client):
        from aimass_pipeline.core.registry import champion_version, previous_version, rollback

        rollback(client, args.use_case)
        return champion_version(client, args.use_case), previous_version(client, args.use_case)

    direct = lambda db: registry_writes.rollback(db, args.use_case)  # noqa: E731
    return _move_champion(args.use_case, direct, by_client, args.wait, ROLLBACK, args.reason)


def cmd_serve(args: argparse.Namespace) -> int:
    from aimass_pipeline.cli.serve import serve

    settings = load_settings().prepare()
    spec_or_exit(settings.use_case_specs(), args.use_case, settings.spec_errors())
    return serve(settings, args.use_case, args.port, args.host)


def _rollout_text(serving: dict) -> str:
    parts = [
        f"{role} version {arm['version']} at {arm['share']:g} %"
        + (
            f" (log LR {arm['running']['log_lr']:.2f} of {arm['running']['boundary']:.2f})"
            if arm.get("running") and "log_lr" in arm["running"]
            else ""
        )
        for role in ("shadow", "canary")
        if (arm := serving.get(role))
    ]
    return "; " + "; ".join(parts) if parts else ""


def cmd_status(args: argparse.Namespace) -> int:
    from aimass_pipeline.cli.status import collect_status

    settings = load_settings().prepare()
    report = collect_status(settings)
    # Additive to schema_version 1: use case -> why its spec is not loaded (the others are reported as usual).
    report["broken_specs"] = {name: str(error) for name, error in settings.spec_errors().items()}
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
        return 0
    print(f"AIMass ({report['environment']}) at {report['home']}")
    for name, info in report["use_cases"].items():
        champ = info["champion"]
        run = info["last_run"]
        champ_text = (
            f"version {champ['version']} ({champ['family']}), holdout {champ['primary_metric']} "
            f"{champ['primary_metric_value']:.4f}"
            if champ
            else "none"
        )
        gone = info["retired"]
        state = f"RETIRED {gone['retired_at']} ({gone['reason'] or 'no reason given'}); " if gone else ""
        print(
            f"- {name}: {state}champion {champ_text}; bento {info['bento'] or 'none'}; "
            f"last run {run['status'] if run else 'none'}" + _rollout_text(info.get("serving") or {})
        )
    for name, error in report["broken_specs"].items():
        print(f"- {name}: NOT LOADED, broken spec: {error}")
    return 0
