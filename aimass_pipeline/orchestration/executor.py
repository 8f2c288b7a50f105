"""Which executor runs a lifecycle's steps: in this process (the local default) or on Celery workers.

On Celery every step is a task: the run's own process submits steps and waits, workers started with
``aimass worker`` run them, and steps on different workers meet through the lake IO manager (S3, or one
shared folder) and the Dagster instance (PostgreSQL in production). Training and tuning steps carry the
``dagster-celery/queue`` tag so they can get workers of their own (the executor ignores Dagster's
concurrency pools, dagster PRs 30256 and 32411: a queue and its workers' concurrency are the limit).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import fsspec
import pandas as pd
import yaml
from dagster import ExecutorDefinition, JobExecutionResult, in_process_executor

from aimass_pipeline.settings import load_settings
from aimass_pipeline.settings.scale import (
    DEFAULT_QUEUE,
    K8S,
    TRAINING_QUEUE,
    ScaleSettings,
    load_scale_settings,
)

QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG, without importing celery
TRAINING_OP_TAGS = {QUEUE_TAG: TRAINING_QUEUE}
# A step longer than this on Redis is handed to a second worker while the first still runs it: keep it above
# the longest step. RabbitMQ's equivalent is the server's consumer_timeout (infra/rabbitmq.conf).
VISIBILITY_TIMEOUT_S = 6 * 3600


def celery_config(scale: ScaleSettings) -> dict[str, Any]:
    """The ``celery_executor`` config; workers read the same (``worker_config_yaml``).

    Acknowledging late and rejecting on a lost worker put a step whose worker was killed back on its queue
    (it runs again) instead of leaving the run waiting for a result that never comes.
    """
    return {
        "broker": scale.broker,
        "backend": scale.backend,
        "config_source": {
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_default_queue": DEFAULT_QUEUE,
            "broker_connection_retry_on_startup": True,
            "broker_transport_options": {
                "visibility_timeout": VISIBILITY_TIMEOUT_S,
                "max_retries": 3,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
        },
    }


def worker_config_yaml(scale: ScaleSettings) -> str:
    """The run-config shaped YAML ``dagster-celery`` workers read their broker and app settings from."""
    return yaml.safe_dump({"execution": {"config": celery_config(scale)}}, sort_keys=True)


def lifecycle_executor(scale: ScaleSettings | None = None) -> ExecutorDefinition:
    """``in_process_executor`` unless ``AIMASS_EXECUTOR`` says ``celery`` or ``k8s``. In-process is the
    default because on 2 cores a fresh process per step costs ~5 s each, more than most steps' real work."""
    scale = scale or load_scale_settings()
    if scale.executor == K8S:
        # Each step its own Job, from the image and config K8sRunLauncher gave the run (infra/helm).
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if not scale.celery:
        return in_process_executor
    from dagster_celery import celery_executor  # imported only when used: celery is a production dependency

    return celery_executor.configured(celery_config(scale), name="celery")


class WorkerRunResult:
    """A run whose steps ran on workers, read as the CLI reads an in-process result.

    ``execute_job``'s own ``output_for_node`` reloads through the IO manager without an asset key, which the
    lake IO manager needs; every stored output records its ``lake_path``, so the value is read from there.
    """

    def __init__(self, result: JobExecutionResult) -> None:
        self._result = result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def output_for_node(self, node: str) -> object:
        paths = [
            e.event_specific_data.materialization.metadata["lake_path"].value
            for e in self._result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"
            and e.step_key == node
            and "lake_path" in e.event_specific_data.materialization.metadata
        ]
        if len(paths) != 1:
            raise LookupError(f"run {self._result.run_id}: step {node} stored {len(paths)} outputs, not one")
        options = load_settings().storage_options if "://" in paths[0] else {}
        with fsspec.open(paths[0], "rb", **options) as handle:
            data = handle.read()
        # The lake IO manager's own formats: Parquet for frames, pickle for everything else.
        return pd.read_parquet(io.BytesIO(data)) if paths[0].endswith(".parquet") else pickle.loads(data)
