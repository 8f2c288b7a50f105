"""`aimass erase USE_CASE SUBJECT_KEY`: remove a data subject from every store, with a receipt."""

from __future__ import annotations

import argparse
import json
import sys


def add_erase_parser(sub: argparse._SubParsersAction) -> None:
    erase = sub.add_parser(
        "erase",
        help="erase a data subject (its subject key as landed) from every store of a use case",
        description="Remove the subject's rows from the raw zone (files rewritten, manifests updated), lake "
        "tables, the warehouse, prediction logs, labels and MLflow input examples; write a receipt and an "
        "audit event; flag the champion trained on the subject and, when the spec's pii.on_erasure is "
        "'retrain', retrain through the normal gate. A file landing the subject again is quarantined.",
    )
    erase.add_argument("use_case")
    erase.add_argument("subject_key", help="the subject's key as it landed (e.g. a patient's record number)")
    erase.add_argument("--reason", default="", help="why (kept in the receipt and the audit trail)")
    erase.add_argument(
        "--no-retrain",
        action="store_true",
        help="flag the champion but do not start the retrain now (run `aimass run --use-case` later)",
    )
    erase.add_argument("--json", action="store_true", help="print the receipt as JSON")
    erase.set_defaults(func="cmd_erase")


def cmd_erase(args: argparse.Namespace) -> int:
    from aimass_pipeline.cli.common import ready_settings, spec_or_exit
    from aimass_pipeline.privacy.erasure import ErasureError, erase

    settings = ready_settings()
    spec = spec_or_exit(settings.use_case_specs(), args.use_case, settings.spec_errors())
    try:
        done = erase(settings, spec, args.subject_key, reason=args.reason)
    except ErasureError as exc:
        print(f"aimass: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(done.receipt, indent=2, sort_keys=True))
    else:
        print(
            f"erased {done.rows_removed} row(s) of the subject from {spec.name}; receipt {done.receipt_uri}"
        )
        for entry in done.receipt["removed"]:
            print(f"  {entry['store']:<18} {entry['rows']:>6}  {entry['location']}")
        for flag in done.flagged:
            print(f"  champion {flag['model']} v{flag['version']} flagged: {flag['status']}")
    if not done.retrain or args.no_retrain:
        return 0
    from aimass_pipeline.cli.lifecycle import cmd_run

    print(f"retraining {spec.name} through the gate (spec pii.on_erasure: retrain)", flush=True)
    return cmd_run(argparse.Namespace(use_case=spec.name, max_trials=None, log_level="INFO"))
