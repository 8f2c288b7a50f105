"""`aimass run` and `aimass ingest`: lifecycle runs in this process, or on the run queue when a daemon serves
this instance (orchestration/queue.py)."""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aimass_pipeline.cli.audit_trail import record_spec_changes
from aimass_pipeline.cli.common import EXIT_CONFIG, ready_settings, report_broken, spec_or_exit
from aimass_pipeline.cli.quarantine import quarantined


def _run_config(spec, args: argparse.Namespace, base: dict | None = None) -> dict:
    run_config: dict = {**(base or {}), "loggers": {"console": {"config": {"log_level": args.log_level}}}}
    if args.max_trials is not None:
        run_config["ops"] = {
            **run_config.get("ops", {}),
            **{
                f"{spec.name}__{family}_params": {"config": {"max_trials": args.max_trials}}
                for family in spec.families
            },
        }
    return run_config


def _new_batches(uc, settings, settle_s: float) -> list:
    """Every batch the sensor would start from the landing zone now, tick after tick until none is left
    (the sensor takes at most a few per tick)."""
    from aimass_pipeline.collection.sensors import landing_tick
    from aimass_pipeline.core.lake import Lake

    lake = Lake(settings.lake_url, settings.storage_options)
    requests, cursor = [], None
    while True:
        tick = landing_tick(uc, settings.landing_location(uc.name), lake, cursor, settle_s=settle_s)
        if not tick.requests:
            return requests
        requests.extend(tick.requests)
        cursor = tick.cursor


def _set_aside(uc, result, err=None) -> bool:
    """Print the files a run quarantined while the rest of its batch flowed on; True when there were any."""
    from aimass_pipeline.orchestration.jobs import failed_checks

    failed = failed_checks(result, uc.quarantine_check)
    for description in failed:
        print(f"[{uc.name}]   {description}", file=err or sys.stderr, flush=True)
    return bool(failed)


def _report(name: str, what: str, result, elapsed: float, term=None) -> bool:
    from aimass_pipeline.cli.runview import step_errors
    from aimass_pipeline.orchestration.jobs import run_failures

    out, err = (term.out, term.err) if term else (sys.stdout, sys.stderr)
    if result.success:
        print(f"[{name}] {what}: run {result.run_id} succeeded in {elapsed:.1f}s", file=out, flush=True)
        return True
    print(f"[{name}] {what}: run {result.run_id} FAILED after {elapsed:.1f}s", file=err)
    for line in run_failures(result):
        print(f"[{name}]   {line}", file=err)
    if term:  # the third-party log is not on the terminal: the whole error is (a refusal's stack: the log)
        log = io.StringIO()
        for error in step_errors(result, expected_to=log):
            print(f"[{name}] {error}", file=err)
        if log.getvalue():
            with open(term.log_file, "a") as handle:
                handle.write(log.getvalue())
            print(f"[{name}]   (where it was raised: {term.log_file})", file=err)
    err.flush()
    return False


def _daemon_serves(out=None) -> bool:
    """True when a live daemon serves this instance: runs then go to its queue (orchestration/queue.py)."""
    from aimass_pipeline.orchestration.jobs import dagster_instance
    from aimass_pipeline.orchestration.queue import live_daemon

    with dagster_instance() as instance:
        if not live_daemon(instance):
            return False
    print(
        "a Dagster daemon serves this instance (`aimass up`): submitting to its run queue",
        file=out or sys.stdout,
        flush=True,
    )
    return True


def _submit(uc, runs: list) -> None:
    from aimass_pipeline.orchestration.jobs import dagster_instance
    from aimass_pipeline.orchestration.queue import QueueError, submit_batches

    with dagster_instance() as instance:
        try:
            submit_batches(instance, uc, runs)
        except QueueError as exc:
            raise SystemExit(f"aimass: {exc}") from exc


def _execute(defs, uc, instance, request, run_config: dict, **kwargs):
    """execute_batch, the run tagged with this process; first, runs of the use case that a killed command
    left STARTED are marked failed (nothing else would: no run monitor watches an in-process run)."""
    from aimass_pipeline.orchestration.jobs import execute_batch
    from aimass_pipeline.orchestration.queue import fail_orphaned_runs, owned_by_this_process

    for run_id in fail_orphaned_runs(instance, uc):
        print(
            f"[{uc.name}] run {run_id} was left running by a killed command: marked failed", file=sys.stderr
        )
    return execute_batch(defs, uc, instance, owned_by_this_process(request), run_config, **kwargs)


def cmd_run(args: argparse.Namespace) -> int:
    """Land the packaged data on a fresh home, take in every new batch, then run the whole lifecycle once:
    on the newest new batch, or, with nothing new, again on the newest stored batch (idempotent). The
    terminal gets AIMass's own lines and a summary table; third-party output goes to a log file (runview)."""
    from aimass_pipeline.cli.runview import render_table, third_party_to_log
    from aimass_pipeline.core.registry import ensure_store
    from aimass_pipeline.settings import load_settings

    settings = load_settings().prepare()
    specs = settings.use_case_specs()
    names = [args.use_case] if args.use_case else list(specs)
    errors = settings.spec_errors()
    broken = report_broken(settings) if not args.use_case else {}
    for name in names:
        spec_or_exit(specs, name, errors)
    record_spec_changes(settings)  # the audit trail names every spec a run used
    rows: list[list[str]] = []
    with third_party_to_log(settings.home / "logs") as term:
        print(f"third-party logs and warnings: {term.log_file}", file=term.out, flush=True)
        ensure_store(settings.mlflow_tracking_uri)  # as ready_settings(), its migration log into the file
        queued = _daemon_serves(term.out)
        failed = _run_all(settings, specs, names, args, queued, term, rows)
        if rows:
            print("\n" + render_table(rows), file=term.out, flush=True)
    # A broken spec of another use case: the healthy ones ran, and the exit code still says so.
    return 1 if failed else (EXIT_CONFIG if broken else 0)


def _run_all(settings, specs, names, args, queued: bool, term, rows: list) -> list[str]:
    from aimass_pipeline.cli import stores
    from aimass_pipeline.cli.runview import summary_row
    from aimass_pipeline.collection.landing import Batch, seed_landing_zone
    from aimass_pipeline.collection.sensors import batch_request
    from aimass_pipeline.core.lake import Lake
    from aimass_pipeline.definitions import build_definitions
    from aimass_pipeline.orchestration.jobs import dagster_instance
    from aimass_pipeline.orchestration.use_case import UseCase

    def say(line: str) -> None:
        print(line, file=term.out, flush=True)

    defs = None if queued else build_definitions(specs)
    failed = []
    for name in names:
        spec = specs[name]
        uc = UseCase(spec)
        if spec.data.seed_source:
            files = spec.data.image is not None and spec.data.image.source == "files"
            landing = settings.landing_location(name)
            seeded = seed_landing_zone(landing, spec.contract, spec.data.seed_source, image_files=files)
            if seeded:
                say(f"[{name}] landed the first batch: {seeded}")
        requests = _new_batches(uc, settings, settle_s=0)
        if not requests:
            stored = Lake(settings.lake_url, settings.storage_options).raw_batches(name)
            if not stored:
                print(
                    f"[{name}] no batch in the raw zone and no file in {settings.landing_dir(name)}",
                    file=term.err,
                    flush=True,
                )
                failed.append(name)
                continue
            requests = [batch_request(uc, Batch(stored[-1]["batch_id"], ()))]
        if queued:
            _submit(uc, [(r, _run_config(spec, args, r.run_config)) for r in requests])
            continue
        started = time.monotonic()
        say(f"[{name}] lifecycle running (collection -> ... -> deployment) on {len(requests)} batch(es)")
        set_aside = False
        with dagster_instance() as instance, _progress(instance, name, defs, term):
            # Earlier new batches only enter the raw zone; the lifecycle then runs once, over all of them.
            for request in requests[:-1]:
                result = _execute(
                    defs,
                    uc,
                    instance,
                    request,
                    _run_config(spec, args, request.run_config),
                    asset_selection=[uc.key(uc.raw_batch)],
                )
                if _report(name, f"batch {request.partition_key}", result, time.monotonic() - started, term):
                    set_aside |= _set_aside(uc, result, term.err)
            result = _execute(
                defs, uc, instance, requests[-1], _run_config(spec, args, requests[-1].run_config)
            )
        what = f"lifecycle on batch {requests[-1].partition_key}"
        if not _report(name, what, result, time.monotonic() - started, term):
            failed.append(name)
            continue
        if set_aside | _set_aside(uc, result, term.err):
            failed.append(f"{name} (files quarantined)")
        champion = result.output_for_node(f"{name}__champion_model")
        bento = result.output_for_node(f"{name}__champion_bento")
        say(f"[{name}] registered version {champion['version']}: {champion['decision']['reason']}")
        say(
            f"[{name}] champion: models:/{name}@champion = version {champion['champion_version']}; bento {bento}"
        )
        versions = stores.model_versions(settings, name)
        rows.append(summary_row(name, spec.metric, spec.gate.floor, champion, versions, str(bento)))
    return failed


@contextmanager
def _progress(instance, name: str, defs, term) -> Iterator[None]:
    """The live stage view of the runs executed inside the block (cli/progress.py)."""
    from aimass_pipeline.cli.progress import StageView
    from aimass_pipeline.orchestration.progress import step_stages, watched_runs

    view = StageView(name, term.out, live=term.out.isatty())
    try:
        with watched_runs(instance, name, step_stages(defs), view, view.unavailable):
            yield
    finally:
        view.close()


def cmd_ingest(args: argparse.Namespace) -> int:
    """What the landing sensors would start now, run in process: one lifecycle run per new batch."""
    from aimass_pipeline.definitions import build_definitions
    from aimass_pipeline.orchestration.jobs import dagster_instance
    from aimass_pipeline.orchestration.use_case import UseCase

    settings = ready_settings()
    specs = settings.use_case_specs()
    names = [args.use_case] if args.use_case else list(specs)
    errors = settings.spec_errors()
    broken = report_broken(settings) if not args.use_case else {}
    for name in names:
        spec_or_exit(specs, name, errors)
    record_spec_changes(settings)  # the audit trail names every spec a run used
    queued = _daemon_serves()
    defs = None if queued else build_definitions(specs)
    failed = []
    with dagster_instance() as instance:
        for name in names:
            uc = UseCase(specs[name])
            # No cursor: the raw zone alone decides what is new, so a file retried from quarantine counts.
            requests = _new_batches(uc, settings, settle_s=args.settle_s)
            if not requests:
                print(f"[{name}] nothing new in {settings.landing_dir(name)}")
                continue
            if queued:
                _submit(uc, [(r, _run_config(specs[name], args, r.run_config)) for r in requests])
                continue
            for request in requests:
                what = f"batch {request.partition_key} ({request.tags['aimass/batch_files']})"
                started = time.monotonic()
                result = _execute(
                    defs, uc, instance, request, _run_config(specs[name], args, request.run_config)
                )
                succeeded = _report(name, what, result, time.monotonic() - started)
                # Exit 1 also when files were set aside, so a script notices what the UI shows as a failed check.
                if not succeeded or _set_aside(uc, result):
                    failed.append(f"{name}:{request.partition_key}")
    for entry in quarantined(settings, names):
        print(f"[{entry['use_case']}] in quarantine: {entry['quarantined_file']} [{entry['rule']}]")
    # A broken spec of another use case: the healthy ones ran, and the exit code still says so.
    return 1 if failed else (EXIT_CONFIG if broken else 0)
