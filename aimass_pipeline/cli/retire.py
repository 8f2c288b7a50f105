"""`aimass retire USE_CASE` and `aimass unretire USE_CASE`: end a use case's service and undo it.

Retiring switches the use case's sensors and schedules off in the Dagster instance, sets the registry alias
``retired`` on its champion (which keeps ``champion``: lineage and `aimass trace` still resolve), and writes
``retired/<use case>.json`` to the lake, which makes its served endpoint answer 410 Gone. Nothing is deleted:
lineage, logs and models stay for the spec's retention. Unretiring restarts exactly what retiring stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt

RETIRED_ALIAS = "retired"


def add_retire_parsers(sub: argparse._SubParsersAction) -> None:
    retire = sub.add_parser(
        "retire",
        help="end a use case's service: sensors and schedules off, endpoint 410 Gone, alias 'retired'",
    )
    retire.add_argument("use_case")
    retire.add_argument("--reason", help="why, for the audit trail")
    retire.set_defaults(func="cmd_retire")
    unretire = sub.add_parser(
        "unretire", help="undo `aimass retire`: sensors, schedules and endpoint back on"
    )
    unretire.add_argument("use_case")
    unretire.add_argument("--reason", help="why, for the audit trail")
    unretire.set_defaults(func="cmd_unretire")


def retire(settings, use_case: str, reason: str | None, instance, repo) -> dict:
    """Retire ``use_case`` in ``instance`` (its code in ``repo``); returns the record kept in the lake."""
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.cli.audit_trail import note
    from aimass_pipeline.core.audit import RETIRE
    from aimass_pipeline.core.registry import champion_version
    from aimass_pipeline.core.retirement import mark_retired, retired
    from aimass_pipeline.orchestration.retirement import switch_off

    if retired(settings.lake_url, settings.storage_options, use_case) is not None:
        raise SystemExit(f"aimass: {use_case} is already retired (`aimass unretire {use_case}` undoes it)")
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = champion_version(client, use_case)
    if champion is not None:
        client.set_registered_model_alias(use_case, RETIRED_ALIAS, str(champion.version))
    stopped = switch_off(instance, repo, use_case, list(settings.use_case_specs()))
    record = {
        "use_case": use_case,
        "retired_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "last_champion": str(champion.version) if champion is not None else None,
        "stopped": stopped,
    }
    mark_retired(settings.lake_url, settings.storage_options, use_case, record)
    note(settings, RETIRE, use_case, record)
    return record


def unretire(settings, use_case: str, reason: str | None, instance, repo) -> dict:
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.cli.audit_trail import note
    from aimass_pipeline.core.audit import UNRETIRE
    from aimass_pipeline.core.retirement import clear_retired, retired
    from aimass_pipeline.orchestration.retirement import switch_on

    record = retired(settings.lake_url, settings.storage_options, use_case)
    if record is None:
        raise SystemExit(f"aimass: {use_case} is not retired")
    started = switch_on(instance, repo, record["stopped"])
    if record["last_champion"] is not None:
        MlflowClient(tracking_uri=settings.mlflow_tracking_uri).delete_registered_model_alias(
            use_case, RETIRED_ALIAS
        )
    clear_retired(settings.lake_url, settings.storage_options, use_case)
    evidence = {"reason": reason, "started": started, "retired": record}
    note(settings, UNRETIRE, use_case, evidence)
    return evidence


def _run(args: argparse.Namespace, action) -> dict:
    from aimass_pipeline.cli.common import ready_settings, spec_or_exit
    from aimass_pipeline.orchestration.jobs import dagster_instance
    from aimass_pipeline.orchestration.retirement import loaded_repository
    from aimass_pipeline.transformation.project import ensure_manifest

    settings = ready_settings()
    spec_or_exit(settings.use_case_specs(), args.use_case, settings.spec_errors())
    ensure_manifest()  # the definitions need dbt's manifest to load
    with dagster_instance() as instance, loaded_repository(instance) as repo:
        return action(settings, args.use_case, args.reason, instance, repo)


def cmd_retire(args: argparse.Namespace) -> int:
    record = _run(args, retire)
    stopped = ", ".join(record["stopped"]) or "none were running"
    version = record["last_champion"]
    alias = f"alias '{RETIRED_ALIAS}' on version {version}" if version else "no champion to mark"
    print(
        f"{args.use_case}: retired; sensors and schedules stopped: {stopped}; {alias}; its endpoint answers 410 Gone"
    )
    return 0


def cmd_unretire(args: argparse.Namespace) -> int:
    evidence = _run(args, unretire)
    print(f"{args.use_case}: back in service; restarted: {', '.join(evidence['started']) or 'nothing'}")
    return 0
