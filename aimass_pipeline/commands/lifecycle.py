"""`aimass run` and `aimass ingest`: lifecycle runs in this process."""

from __future__ import annotations

import argparse
import sys
import time

from aimass_pipeline.catalog import use_case_specs
from aimass_pipeline.commands.common import ready_settings, run_failures, spec_or_exit
from aimass_pipeline.commands.data import quarantined


def cmd_run(args: argparse.Namespace) -> int:
    from aimass_pipeline.lib.landing import seed_landing_zone

    settings = ready_settings()
    specs = use_case_specs()
    names = [args.use_case] if args.use_case else list(specs)
    from dagster import DagsterInstance

    from aimass_pipeline.definitions import build_definitions

    defs = build_definitions(specs)
    failed = []
    for name in names:
        spec = spec_or_exit(specs, name)
        if spec.data.seed_source:
            seeded = seed_landing_zone(settings.landing_dir(name), spec.contract, spec.data.seed_source)
            if seeded:
                print(f"[{name}] landed the first batch: {seeded}")
        job = defs.resolve_job_def(f"{name}_lifecycle")
        run_config: dict = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
        if args.max_trials is not None:
            run_config["ops"] = {
                f"{name}__{family}_params": {"config": {"max_trials": args.max_trials}}
                for family in spec.families
            }
        started = time.monotonic()
        with DagsterInstance.get() as instance:
            result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
        elapsed = time.monotonic() - started
        if not result.success:
            print(f"[{name}] lifecycle run {result.run_id} FAILED after {elapsed:.1f}s", file=sys.stderr)
            for line in run_failures(result):
                print(f"[{name}]   {line}", file=sys.stderr)
            failed.append(name)
            continue
        champion = result.output_for_node(f"{name}__champion_model")
        bento = result.output_for_node(f"{name}__champion_bento")
        print(f"[{name}] lifecycle run {result.run_id} succeeded in {elapsed:.1f}s")
        print(f"[{name}] registered version {champion['version']}: {champion['decision']['reason']}")
        print(
            f"[{name}] champion: models:/{name}@champion = version {champion['champion_version']}; bento {bento}"
        )
        print(f"[{name}] serve it: .venv/bin/aimass serve {name} --port 3000")
    return 1 if failed else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """What the landing sensors would start now, run in process: one lifecycle run per new file."""
    from dagster import DagsterInstance, RunRequest, build_sensor_context

    from aimass_pipeline.definitions import build_definitions
    from aimass_pipeline.resources import LakeResource, LandingZoneResource

    settings = ready_settings()
    specs = use_case_specs()
    names = [args.use_case] if args.use_case else list(specs)
    for name in names:
        spec_or_exit(specs, name)
    defs = build_definitions(specs)
    resources = {
        "landing": LandingZoneResource(root=str(settings.landing_root)),
        "lake": LakeResource(url=settings.lake_url),
    }
    failed = []
    with DagsterInstance.get() as instance:
        for name in names:
            # No cursor: the raw zone alone decides what is new, so a file retried from quarantine counts.
            with build_sensor_context(instance=instance, cursor=None, resources=resources) as context:
                outcome = defs.resolve_sensor_def(f"{name}_landing_sensor")(context)
            requests = [
                r for r in (outcome if isinstance(outcome, list) else []) if isinstance(r, RunRequest)
            ]
            if not requests:
                print(f"[{name}] nothing new in {settings.landing_dir(name)}")
                continue
            job = defs.resolve_job_def(f"{name}_lifecycle")
            for request in requests:
                file = request.tags["aimass/batch_file"]
                run_config = {
                    **request.run_config,
                    "loggers": {"console": {"config": {"log_level": args.log_level}}},
                }
                if args.max_trials is not None:
                    run_config["ops"] = {
                        **run_config["ops"],
                        **{
                            f"{name}__{family}_params": {"config": {"max_trials": args.max_trials}}
                            for family in specs[name].families
                        },
                    }
                result = job.execute_in_process(
                    instance=instance, run_config=run_config, tags=request.tags, raise_on_error=False
                )
                if result.success:
                    print(f"[{name}] {file}: lifecycle run {result.run_id} succeeded")
                    continue
                print(f"[{name}] {file}: lifecycle run {result.run_id} FAILED", file=sys.stderr)
                for line in run_failures(result):
                    print(f"[{name}]   {line}", file=sys.stderr)
                failed.append(f"{name}:{file}")
    for entry in quarantined(settings, names):
        print(f"[{entry['use_case']}] in quarantine: {entry['quarantined_file']} [{entry['rule']}]")
    return 1 if failed else 0
