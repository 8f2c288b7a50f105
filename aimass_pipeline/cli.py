"""``aimass``: the operator's and scripts' entry point to the platform."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aimass_pipeline.catalog import use_case_specs
from aimass_pipeline.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _reset_signals() -> None:
    # Children of a non-interactive shell inherit ignored SIGINT/SIGTERM; without this they cannot be stopped.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _ready_settings():
    """Settings applied to this process, with the tracking store's schema created before any run worker."""
    from aimass_pipeline.lib.registry import ensure_store

    settings = load_settings().prepare()
    ensure_store(settings.mlflow_tracking_uri)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from aimass_pipeline.lib.landing import seed_landing_zone

    settings = _ready_settings()
    specs = use_case_specs()
    names = [args.use_case] if args.use_case else list(specs)
    from dagster import DagsterInstance

    from aimass_pipeline.definitions import build_definitions

    defs = build_definitions(specs)
    failed = []
    for name in names:
        spec = _spec(specs, name)
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
            for line in _failures(result):
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

    settings = _ready_settings()
    specs = use_case_specs()
    names = [args.use_case] if args.use_case else list(specs)
    for name in names:
        _spec(specs, name)
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
                for line in _failures(result):
                    print(f"[{name}]   {line}", file=sys.stderr)
                failed.append(f"{name}:{file}")
    for entry in _quarantined(settings, names):
        print(f"[{entry['use_case']}] in quarantine: {entry['quarantined_file']} [{entry['rule']}]")
    return 1 if failed else 0


def _quarantined(settings, names: list[str]) -> list[dict]:
    from aimass_pipeline.lib.quarantine import list_quarantined, quarantine_dir_for

    return [
        {"use_case": name, **entry}
        for name in names
        for entry in list_quarantined(quarantine_dir_for(settings.landing_root, name))
    ]


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    settings = load_settings().prepare()
    entries = _quarantined(settings, [args.use_case] if args.use_case else sorted(use_case_specs()))
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
    from aimass_pipeline.lib.quarantine import quarantine_dir_for, retry

    settings = load_settings().prepare()
    _spec(use_case_specs(), args.use_case)
    try:
        landed = retry(
            quarantine_dir_for(settings.landing_root, args.use_case),
            args.file,
            settings.landing_dir(args.use_case),
        )
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f"aimass: {exc}") from exc
    print(f"{args.use_case}: back in the landing zone: {landed}")
    return 0


def _failures(result) -> list[str]:
    """The failed steps and checks of a run, for a message an operator can act on."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            cause = (
                error.cause.message.strip()
                if error and error.cause
                else (error.message.strip() if error else "")
            )
            lines.append(f"step {event.step_key} failed: {cause.splitlines()[-1] if cause else ''}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            check = event.event_specific_data
            lines.append(
                f"check {check.check_name} on {check.asset_key.to_user_string()} failed: {check.description or ''}"
            )
    return lines


def _spec(specs: dict, name: str):
    if name not in specs:
        raise SystemExit(f"unknown use case {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def _move_champion(use_case: str, move) -> int:
    """Apply an operator's alias change, then rebuild the bento so `aimass serve` serves the new champion."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.lib.bento import build_champion_bento
    from aimass_pipeline.lib.registry import champion_version, previous_version

    settings = load_settings().prepare()
    _spec(use_case_specs(), use_case)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    try:
        move(client)
    except (LookupError, MlflowException) as exc:
        # An operator's typo (no such version, nothing to roll back to) is a message, not a traceback.
        raise SystemExit(f"aimass: {getattr(exc, 'message', None) or exc}") from exc
    champion, previous = champion_version(client, use_case), previous_version(client, use_case)
    bento = build_champion_bento(settings, use_case)
    print(
        f"{use_case}: champion = version {champion.version}; previous = "
        f"{previous.version if previous else 'none'}; bento {bento}"
    )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from aimass_pipeline.lib.registry import promote

    def move(client) -> None:
        version = str(args.version)
        client.get_model_version(args.use_case, version)  # a clear error before any alias moves
        promote(client, args.use_case, version)
        client.set_model_version_tag(args.use_case, version, "promoted_by", "operator")

    return _move_champion(args.use_case, move)


def cmd_rollback(args: argparse.Namespace) -> int:
    from aimass_pipeline.lib.registry import rollback

    return _move_champion(args.use_case, lambda client: rollback(client, args.use_case))


def cmd_serve(args: argparse.Namespace) -> int:
    from aimass_pipeline.lib.bento import serve

    settings = load_settings().prepare()
    _spec(use_case_specs(), args.use_case)
    return serve(settings, args.use_case, args.port, args.host)


def cmd_status(args: argparse.Namespace) -> int:
    from aimass_pipeline.status import collect_status

    report = collect_status(load_settings().prepare())
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
        print(
            f"- {name}: champion {champ_text}; bento {info['bento'] or 'none'}; last run {run['status'] if run else 'none'}"
        )
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    settings = _ready_settings()
    from aimass_pipeline.transformation.project import ensure_manifest

    ensure_manifest()
    env = settings.child_env()
    commands = [
        [_bin("dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)],
        [
            _bin("mlflow"),
            "ui",
            "--backend-store-uri",
            settings.mlflow_tracking_uri,
            "--default-artifact-root",
            settings.mlflow_artifacts_uri,
            "--host",
            args.host,
            "--port",
            str(args.mlflow_port),
            # One worker: MLflow's default four cost more start-up CPU than the rest of `up` together.
            "--workers",
            "1",
        ],
    ]
    # MLflow's job runner drives features AIMass does not use (online scoring, trace archival).
    envs = [env, {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}]
    procs = [
        subprocess.Popen(cmd, env=child_env, cwd=ROOT, preexec_fn=_reset_signals, start_new_session=True)
        for cmd, child_env in zip(commands, envs, strict=True)
    ]
    print(
        f"Dagster UI: http://{args.host}:{args.port}  MLflow UI: http://{args.host}:{args.mlflow_port}",
        flush=True,
    )

    def stop(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
    finally:
        stop(signal.SIGTERM, None)
        deadline = time.monotonic() + 30
        for proc in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        # dagster dev's code server can outlive its parent by a few seconds: wait for each group to empty.
        for proc in procs:
            _wait_for_group(proc.pid, deadline)
    return max(proc.returncode or 0 for proc in procs)


def _wait_for_group(pgid: int, deadline: float) -> None:
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            return
        time.sleep(0.2)


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
    run.set_defaults(func=cmd_run)

    ingest = sub.add_parser(
        "ingest", help="take in what is in the landing zone now, as the sensors would (one run per new file)"
    )
    ingest.add_argument("--use-case", help="one use case (default: all)")
    ingest.add_argument("--max-trials", type=int, help="cap every family's tuning trials")
    ingest.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    ingest.set_defaults(func=cmd_ingest)

    quarantine = sub.add_parser("quarantine", help="landed files set aside for breaking their contract")
    quarantine_sub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    q_list = quarantine_sub.add_parser("list", help="every quarantined file and why")
    q_list.add_argument("--use-case", help="one use case (default: all)")
    q_list.add_argument("--json", action="store_true", help="stable machine-readable output")
    q_list.set_defaults(func=cmd_quarantine_list)
    q_retry = quarantine_sub.add_parser("retry", help="move a quarantined file back to the landing zone")
    q_retry.add_argument("use_case")
    q_retry.add_argument("file", help="its quarantined name, or its original name (the newest such)")
    q_retry.set_defaults(func=cmd_quarantine_retry)

    serve = sub.add_parser("serve", help="serve the current champion's bento over HTTP")
    serve.add_argument("use_case")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.set_defaults(func=cmd_serve)

    promote = sub.add_parser(
        "promote", help="make a registered version the champion (the old one keeps 'previous')"
    )
    promote.add_argument("use_case")
    promote.add_argument("version", type=int)
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="swap 'champion' and 'previous' and rebuild the bento")
    rollback.add_argument("use_case")
    rollback.set_defaults(func=cmd_rollback)

    status = sub.add_parser("status", help="champion, bento and last run per use case")
    status.add_argument("--json", action="store_true", help="stable machine-readable output")
    status.set_defaults(func=cmd_status)

    up = sub.add_parser("up", help="Dagster webserver + daemon and the MLflow UI on the embedded defaults")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--mlflow-port", type=int, default=5000)
    up.set_defaults(func=cmd_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
