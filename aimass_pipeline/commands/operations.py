"""Operator commands: serve, status, up, promote, rollback."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time

from aimass_pipeline.catalog import use_case_specs
from aimass_pipeline.commands.common import ROOT, bin_path, ready_settings, reset_signals, spec_or_exit
from aimass_pipeline.settings import load_settings


def _move_champion(use_case: str, move) -> int:
    """Apply an operator's alias change, then rebuild the bento so `aimass serve` serves the new champion."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.lib.bento import build_champion_bento
    from aimass_pipeline.lib.registry import champion_version, previous_version

    settings = load_settings().prepare()
    spec_or_exit(use_case_specs(), use_case)
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
    spec_or_exit(use_case_specs(), args.use_case)
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
    settings = ready_settings()
    from aimass_pipeline.transformation.project import ensure_manifest

    ensure_manifest()
    env = settings.child_env()
    commands = [
        [
            bin_path("dagster"),
            "dev",
            "-w",
            str(ROOT / "workspace.yaml"),
            "-h",
            args.host,
            "-p",
            str(args.port),
        ],
        [
            bin_path("mlflow"),
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
        subprocess.Popen(cmd, env=child_env, cwd=ROOT, preexec_fn=reset_signals, start_new_session=True)
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
