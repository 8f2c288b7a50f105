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

from aimass_pipeline.lib.contracts import CONTRACTS, get_contract
from aimass_pipeline.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _reset_signals() -> None:
    # Children of a non-interactive shell inherit ignored SIGINT/SIGTERM; without this they cannot be stopped.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def cmd_run(args: argparse.Namespace) -> int:
    from aimass_pipeline.lib.landing import seed_landing_zone

    settings = load_settings().prepare()
    contract = get_contract(args.use_case)
    seeded = seed_landing_zone(settings.landing_dir(contract.use_case), contract)
    if seeded:
        print(f"landed the first batch: {seeded}")

    from dagster import DagsterInstance

    from aimass_pipeline.definitions import defs

    job = defs.resolve_job_def(f"{contract.use_case}_lifecycle")
    started = time.monotonic()
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": args.log_level}}}},
            raise_on_error=False,
        )
    elapsed = time.monotonic() - started
    if not result.success:
        print(
            f"lifecycle run {result.run_id} FAILED after {elapsed:.1f}s; see `aimass up` for the events",
            file=sys.stderr,
        )
        return 1
    champion = result.output_for_node(f"{contract.use_case}__champion_model")
    bento = result.output_for_node(f"{contract.use_case}__champion_bento")
    decision = champion["decision"]
    print(f"lifecycle run {result.run_id} succeeded in {elapsed:.1f}s")
    print(f"registered {contract.use_case} version {champion['version']}: {decision['reason']}")
    print(f"champion: models:/{contract.use_case}@champion = version {champion['champion_version']}")
    print(f"bento: {bento}")
    print(f"serve it: .venv/bin/aimass serve {contract.use_case} --port 3000")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from aimass_pipeline.lib.bento import serve

    settings = load_settings().prepare()
    return serve(settings, get_contract(args.use_case).use_case, args.port, args.host)


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
            f"version {champ['version']} ({champ['family']}), holdout ROC AUC {champ['holdout_metrics'].get('roc_auc', float('nan')):.4f}"
            if champ
            else "none"
        )
        print(
            f"- {name}: champion {champ_text}; bento {info['bento'] or 'none'}; last run {run['status'] if run else 'none'}"
        )
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings().prepare()
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
    use_cases = sorted(CONTRACTS)

    run = sub.add_parser(
        "run", help="materialise the whole lifecycle now (seeds the landing zone on first run)"
    )
    run.add_argument("--use-case", default="credit_risk", choices=use_cases)
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="serve the current champion's bento over HTTP")
    serve.add_argument("use_case", choices=use_cases)
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.set_defaults(func=cmd_serve)

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
