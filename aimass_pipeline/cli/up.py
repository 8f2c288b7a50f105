"""`aimass up`: the Dagster UI and daemon, the MLflow UI and every use case's champion, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from dataclasses import dataclass, replace

from aimass_pipeline.cli.audit_trail import record_spec_changes
from aimass_pipeline.cli.common import ROOT, ready_settings, report_broken
from aimass_pipeline.core.processes import reset_signals, venv_executable
from aimass_pipeline.settings import Settings

STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    # dagster dev shuts its five processes down on SIGINT; bentoml serve flushes the prediction log on
    # SIGTERM (its on_shutdown hook).
    stop_signal: signal.Signals = signal.SIGINT
    # What `aimass up` prints once it started (a champion's URL).
    banner: str = ""


def champion_servers(settings: Settings, host: str, first_port: int) -> list[tuple[Child, str]]:
    """A `bentoml serve` of the newest bento of every use case whose registry has a champion, on
    consecutive ports, with its URL; use cases without one are reported and skipped."""
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.core.registry import champion_version
    from aimass_pipeline.deployment.bento import bentoml_executable, latest_bento_tags

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    names = list(settings.use_case_specs())
    champions = {name: champion_version(client, name) for name in names}
    crowned = [name for name in names if champions[name] is not None]
    bentos = latest_bento_tags(settings, crowned) if crowned else {}
    servers = []
    for name in names:
        if champions[name] is None:
            print(
                f"{name}: no champion yet, not served (`aimass run --use-case {name}` trains one)", flush=True
            )
            continue
        if bentos[name] is None:
            print(
                f"{name}: champion version {champions[name].version} has no bento yet, not served", flush=True
            )
            continue
        port = first_port + len(servers)
        argv = [*bentoml_executable(), "serve", bentos[name], "--host", host, "--port", str(port)]
        servers.append(
            (
                Child(f"serve {name}", argv, settings.child_env(), signal.SIGTERM),
                f"{name}: champion version {champions[name].version} ({bentos[name]}) at http://{host}:{port}",
            )
        )
    return servers


def up_children(settings: Settings, args: argparse.Namespace) -> list[Child]:
    """The processes `aimass up` starts: the Dagster UI and daemon, the MLflow UI, every champion's server."""
    env = settings.child_env()
    dagster = Child(
        "dagster",
        [
            venv_executable("dagster"),
            "dev",
            "-w",
            str(ROOT / "workspace.yaml"),
            "-h",
            args.host,
            "-p",
            str(args.port),
        ],
        env,
    )
    mlflow_ui = Child(
        "mlflow",
        [
            venv_executable("mlflow"),
            "ui",
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
        # The store URI holds the PostgreSQL password in prod: through the environment (`mlflow ui` reads
        # MLFLOW_BACKEND_STORE_URI), never argv, which every user sees in `ps`. MLflow's job runner drives
        # features AIMass does not use (online scoring, trace archival).
        {
            **env,
            "MLFLOW_BACKEND_STORE_URI": settings.mlflow_tracking_uri,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
    )
    servers = champion_servers(settings, args.host, args.serve_port)
    return [dagster, mlflow_ui, *(replace(child, banner=f"Serving {line}") for child, line in servers)]


def cmd_up(args: argparse.Namespace) -> int:
    settings = ready_settings()
    from aimass_pipeline.transformation.project import ensure_manifest

    ensure_manifest()
    report_broken(settings)  # shown, and in the Dagster UI as a failing <use case>/spec asset; the rest runs
    record_spec_changes(settings)
    children = up_children(settings, args)
    procs = [
        subprocess.Popen(
            child.argv, env=child.env, cwd=ROOT, preexec_fn=reset_signals, start_new_session=True
        )
        for child in children
    ]
    print(
        f"Dagster UI: http://{args.host}:{args.port}  MLflow UI: http://{args.host}:{args.mlflow_port}",
        flush=True,
    )
    for child in children:
        if child.banner:
            print(child.banner, flush=True)

    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child, proc in zip(children, procs, strict=True):
            if proc.poll() is None:
                proc.send_signal(child.stop_signal)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        for child, proc in zip(children, procs, strict=True):
            if proc.returncode is not None and not stopping:
                print(f"aimass up: {child.name} exited with {proc.returncode}; stopping the rest", flush=True)
    finally:
        stop(signal.SIGTERM, None)
        deadline = time.monotonic() + STOP_TIMEOUT_S
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
