"""`aimass quarantine`: what the landing zone refused, and putting it back."""

from __future__ import annotations

import argparse
import json

from aimass_pipeline.cli.common import report_broken, spec_or_exit
from aimass_pipeline.settings import load_settings


def quarantined(settings, names: list[str]) -> list[dict]:
    from aimass_pipeline.collection.quarantine import list_quarantined

    return [
        {"use_case": name, **entry}
        for name in names
        for entry in list_quarantined(settings.quarantine_location(name))
    ]


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    settings = load_settings().prepare()
    specs = settings.use_case_specs()
    if args.use_case:
        spec_or_exit(specs, args.use_case, settings.spec_errors())
    else:
        report_broken(settings)
    entries = quarantined(settings, [args.use_case] if args.use_case else sorted(specs))
    if args.json:
        print(json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    if not entries:
        print("no file in quarantine")
    for entry in entries:
        print(f"- {entry['use_case']}: {entry['quarantined_file']} ({entry['quarantined_at']})")
        print(f"    {entry['message']}")
    return 0


def cmd_quarantine_retry(args: argparse.Namespace) -> int:
    from aimass_pipeline.collection.quarantine import retry

    settings = load_settings().prepare()
    spec_or_exit(settings.use_case_specs(), args.use_case, settings.spec_errors())
    try:
        landed = retry(
            settings.quarantine_location(args.use_case), args.file, settings.landing_location(args.use_case)
        )
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f"aimass: {exc}") from exc
    from aimass_pipeline.cli.audit_trail import note
    from aimass_pipeline.core.audit import QUARANTINE_RETRY

    note(settings, QUARANTINE_RETRY, args.use_case, {"file": args.file, "landed": str(landed)})
    print(f"{args.use_case}: back in the landing zone: {landed}")
    return 0
