"""``aimass``: the operator's and scripts' entry point to the platform."""

from __future__ import annotations

import argparse
import importlib
import sys

from aimass_pipeline.cli.erase import add_erase_parser
from aimass_pipeline.cli.retire import add_retire_parsers
from aimass_pipeline.cli.rollout import add_rollout_parsers
from aimass_pipeline.cli.worker import add_worker_parser

# Parse first, import the command's module after: `aimass --help` and the read-only commands must not pay
# for Dagster, MLflow or torch (issue 13). Each command is "module:function" under aimass_pipeline.cli.
_COMMANDS = {
    "cmd_run": "lifecycle",
    "cmd_ingest": "lifecycle",
    "cmd_quarantine_list": "quarantine",
    "cmd_quarantine_retry": "quarantine",
    "cmd_serve": "operations",
    "cmd_promote": "operations",
    "cmd_rollback": "operations",
    "cmd_status": "operations",
    "cmd_history": "history",
    "cmd_trace": "trace",
    "cmd_retire": "retire",
    "cmd_unretire": "retire",
    "cmd_up": "up",
    "cmd_worker": "worker",
    "cmd_shadow": "rollout",
    "cmd_canary": "rollout",
    "cmd_erase": "erase",
}


def _command(name: str):
    return getattr(importlib.import_module(f"aimass_pipeline.cli.{_COMMANDS[name]}"), name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aimass", description="AIMass: carry a model from a landed file to a served champion."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="materialise the whole lifecycle of every use case (or one) now; lands packaged data on first run",
    )
    run.add_argument("--use-case", help="one use case (default: all)")
    run.add_argument(
        "--max-trials", type=int, help="cap every family's tuning trials (default: the spec's budget)"
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func="cmd_run")

    ingest = sub.add_parser(
        "ingest",
        help="take in what is in the landing zone now, as the sensors would (one run per new batch)",
        description="Take in what is in the landing zone now, as the sensors would: one run per new batch. "
        "Exits 1 when a run failed or a landed file was quarantined (see `aimass quarantine list`).",
    )
    ingest.add_argument("--use-case", help="one use case (default: all)")
    ingest.add_argument("--max-trials", type=int, help="cap every family's tuning trials")
    ingest.add_argument(
        "--settle-s",
        type=float,
        default=10.0,
        help="take files unchanged for this many seconds (the sensor's settle window; 0 for scripts)",
    )
    ingest.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    ingest.set_defaults(func="cmd_ingest")

    quarantine = sub.add_parser("quarantine", help="landed files set aside for breaking their contract")
    quarantine_sub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    q_list = quarantine_sub.add_parser("list", help="every quarantined file and why")
    q_list.add_argument("--use-case", help="one use case (default: all)")
    q_list.add_argument("--json", action="store_true", help="stable machine-readable output")
    q_list.set_defaults(func="cmd_quarantine_list")
    q_retry = quarantine_sub.add_parser("retry", help="move a quarantined file back to the landing zone")
    q_retry.add_argument("use_case")
    q_retry.add_argument("file", help="its quarantined name, or its original name (the newest such)")
    q_retry.set_defaults(func="cmd_quarantine_retry")

    serve = sub.add_parser("serve", help="serve the current champion's bento over HTTP")
    serve.add_argument("use_case")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.set_defaults(func="cmd_serve")

    promote = sub.add_parser(
        "promote", help="make a registered version the champion (the old one keeps 'previous')"
    )
    promote.add_argument("use_case")
    promote.add_argument("version", type=int)
    promote.add_argument(
        "--wait",
        action="store_true",
        help="build the new champion's bento before returning (else in the background)",
    )
    promote.add_argument("--reason", help="why, for the audit trail (`aimass history`)")
    promote.set_defaults(func="cmd_promote")

    rollback = sub.add_parser("rollback", help="swap 'champion' and 'previous'; the bento is rebuilt")
    rollback.add_argument("use_case")
    rollback.add_argument(
        "--wait",
        action="store_true",
        help="build the new champion's bento before returning (else in the background)",
    )
    rollback.add_argument("--reason", help="why, for the audit trail (`aimass history`)")
    rollback.set_defaults(func="cmd_rollback")

    status = sub.add_parser("status", help="champion, bento and last run per use case")
    status.add_argument("--json", action="store_true", help="stable machine-readable output")
    status.set_defaults(func="cmd_status")

    history = sub.add_parser(
        "history", help="a use case's versions: aliases, gate decisions and when each was registered"
    )
    history.add_argument("use_case")
    history.add_argument("--json", action="store_true", help="stable machine-readable output")
    history.add_argument("--at", help="ISO time: which version was champion then, and why (the audit trail)")
    history.set_defaults(func="cmd_history")

    trace_help = (
        "a served prediction's model version, MLflow and Dagster runs, data batches and code version "
        "(exit 1: unknown id; 2: lineage incomplete)"
    )
    trace = sub.add_parser("trace", help=trace_help, description=trace_help)
    trace.add_argument("prediction_id")
    trace.add_argument("--json", action="store_true", help="stable machine-readable output")
    trace.add_argument("--dagster-url", default="http://127.0.0.1:3000", help="Dagster UI base for links")
    trace.add_argument("--mlflow-url", default="http://127.0.0.1:5000", help="MLflow UI base for links")
    trace.set_defaults(func="cmd_trace")

    up = sub.add_parser(
        "up",
        help="Dagster webserver + daemon, the MLflow UI and every use case's champion, on the embedded defaults",
    )
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--mlflow-port", type=int, default=5000)
    up.add_argument(
        "--serve-port", type=int, default=3100, help="first champion's port; the next use case gets +1, ..."
    )
    up.set_defaults(func="cmd_up")
    add_worker_parser(sub)
    add_erase_parser(sub)
    add_retire_parsers(sub)
    add_rollout_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. An expected error (settings AIMass cannot work with, a spec it cannot use) is one
    line on stderr and exit 2, never a traceback; a traceback means a bug."""
    from aimass_pipeline.cli.common import EXIT_CONFIG
    from aimass_pipeline.core.specs import SpecError
    from aimass_pipeline.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        return _command(args.func)(args)
    except (SettingsError, SpecError) as exc:
        print(f"aimass: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
