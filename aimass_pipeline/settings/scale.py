"""How far a run scales out: which Dagster executor runs the steps, and how many processes share a tuning study."""

from __future__ import annotations

import os
from dataclasses import dataclass

IN_PROCESS = "in_process"
CELERY = "celery"
K8S = "k8s"  # each step a Kubernetes Job (dagster-k8s's k8s_job_executor), runs started by K8sRunLauncher
EXECUTORS = (IN_PROCESS, CELERY, K8S)
DEFAULT_BROKER = "pyamqp://guest@127.0.0.1:5672//"
# Celery queue of the steps without a queue tag; training and tuning get TRAINING_QUEUE (orchestration/executor).
DEFAULT_QUEUE = "dagster"
TRAINING_QUEUE = "training"


@dataclass(frozen=True)
class ScaleSettings:
    executor: str  # IN_PROCESS (the local default), CELERY or K8S
    broker: str
    backend: str
    tuning_workers: int
    tuning_storage: str | None  # an optuna RDB URL the tuning workers share

    @property
    def celery(self) -> bool:
        return self.executor == CELERY


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def load_scale_settings() -> ScaleSettings:
    """``AIMASS_EXECUTOR`` (``in_process``|``celery``|``k8s``), ``AIMASS_CELERY_BROKER`` (RabbitMQ on localhost;
    ``redis://…`` also works), ``AIMASS_CELERY_BACKEND`` (``rpc://``), ``AIMASS_TUNING_WORKERS`` (1) and
    ``AIMASS_TUNING_STORAGE`` (required above one worker: ``postgresql+psycopg2://…`` or ``sqlite:///…``)."""
    executor = os.environ.get("AIMASS_EXECUTOR") or IN_PROCESS
    if executor not in EXECUTORS:
        raise ValueError(f"AIMASS_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    workers = _positive_int("AIMASS_TUNING_WORKERS", 1)
    storage = os.environ.get("AIMASS_TUNING_STORAGE") or None
    if workers > 1 and storage is None:
        raise ValueError(
            f"AIMASS_TUNING_WORKERS={workers} needs AIMASS_TUNING_STORAGE, the optuna RDB the workers share"
        )
    return ScaleSettings(
        executor=executor,
        broker=os.environ.get("AIMASS_CELERY_BROKER") or DEFAULT_BROKER,
        backend=os.environ.get("AIMASS_CELERY_BACKEND") or "rpc://",
        tuning_workers=workers,
        tuning_storage=storage,
    )
