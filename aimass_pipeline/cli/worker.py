"""`aimass worker`: a Celery worker that runs lifecycle steps for runs started with AIMASS_EXECUTOR=celery."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aimass_pipeline.cli.common import ready_settings


def add_worker_parser(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser(
        "worker",
        help="a Celery worker for lifecycle steps (runs started with AIMASS_EXECUTOR=celery)",
        description="Start a Celery worker on this home's settings: the same DAGSTER_HOME, lake and MLflow "
        "store as the runs it serves; the broker from AIMASS_CELERY_BROKER. Runs in the foreground.",
    )
    worker.add_argument(
        "--queue",
        action="append",
        help="a queue to consume (repeat for several; default 'dagster'; training and tuning steps go to "
        "'training')",
    )
    worker.add_argument("--concurrency", type=int, default=1, help="steps at once (one process each)")
    worker.add_argument("--name", help="worker name (default: dagster-<random>)")
    worker.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    worker.set_defaults(func=cmd_worker)


def worker_argv(queues: list[str], concurrency: int, name: str, log_level: str) -> list[str]:
    """The celery command line ``dagster-celery worker start`` would run, with our concurrency."""
    return [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "dagster_celery.app",
        "worker",
        "--prefetch-multiplier=1",
        "--loglevel",
        log_level,
        "-Q",
        ",".join(queues),
        "-n",
        f"{name}@%h",
        "--concurrency",
        str(concurrency),
    ]


def cmd_worker(args: argparse.Namespace) -> int:
    """Write the worker's Celery config where ``dagster_celery.app`` imports it, then become the worker
    (exec, so a signal to this process reaches Celery itself)."""
    from dagster_celery.cli import get_config_dir

    from aimass_pipeline.orchestration.executor import worker_config_yaml
    from aimass_pipeline.settings.scale import DEFAULT_QUEUE, load_scale_settings

    if args.concurrency < 1:
        raise SystemExit(f"--concurrency must be at least 1, got {args.concurrency}")
    settings = ready_settings()
    scale = load_scale_settings()
    config_yaml = settings.home / "celery" / "worker.yaml"
    config_yaml.parent.mkdir(parents=True, exist_ok=True)
    config_yaml.write_text(worker_config_yaml(scale))
    config_yaml.chmod(0o600)  # the broker URL in it may carry a password
    config_dir = get_config_dir(str(config_yaml))
    queues = args.queue or [DEFAULT_QUEUE]
    name = args.name or f"aimass-{os.getpid()}"
    argv = worker_argv(queues, args.concurrency, name, args.log_level)
    env = settings.child_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (config_dir, env.get("PYTHONPATH")) if p)
    # Not the broker URL: it carries the broker's password.
    print(f"[worker] {name}: queues {','.join(queues)}, concurrency {args.concurrency}")
    sys.stdout.flush()
    os.execve(argv[0], argv, env)
    return 0  # not reached
