"""The run queue, when a daemon serves it: `aimass run`/`ingest` submit there instead of running beside it.

With `aimass up` (or any `dagster-daemon`) running on the same instance, the landing sensor may already have
requested a run for the very file a CLI command just found; executing in the CLI's process as well would
process the batch twice and ignore the queue's one-run-per-use-case limit. So, when the instance holds a live
daemon heartbeat, the CLI submits each batch's lifecycle run to the queue (`dagster job launch`, which goes
through the instance's run coordinator) and skips a batch that already has a queued, running or successful run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunRequest, RunsFilter

from aimass_pipeline.core.processes import reset_signals, venv_executable
from aimass_pipeline.orchestration.use_case import USE_CASE_TAG, UseCase

# The checkout: workspace.yaml names the code location the daemon loads.
ROOT = Path(__file__).resolve().parents[2]
# The daemon beats every 30 s; three missed beats and it counts as gone.
HEARTBEAT_TOLERANCE_S = 90.0
BATCH_TAG = "aimass/batch_id"
SUBMITTED_BY_TAG = "aimass/submitted_by"
_LIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.SUCCESS,
]


class QueueError(RuntimeError):
    """The run queue refused a submission."""


def live_daemon(instance: DagsterInstance) -> bool:
    """True when a daemon has beaten on this instance within HEARTBEAT_TOLERANCE_S."""
    now = time.time()
    return any(
        now - beat.timestamp < HEARTBEAT_TOLERANCE_S for beat in instance.get_daemon_heartbeats().values()
    )


def existing_run(instance: DagsterInstance, uc: UseCase, batch_id: str) -> str | None:
    """A queued, running or successful run of the batch (the sensor's or an earlier command's), or None."""
    runs = instance.get_runs(
        filters=RunsFilter(tags={USE_CASE_TAG: uc.name, BATCH_TAG: batch_id}, statuses=_LIVE), limit=1
    )
    return runs[0].run_id if runs else None


def submit(instance: DagsterInstance, uc: UseCase, request: RunRequest, run_config: dict) -> str:
    """Queue the lifecycle run of ``request``'s batch through the instance's run coordinator; its run id."""
    instance.add_dynamic_partitions(uc.batches.name, [request.partition_key])
    run_id = str(uuid.uuid4())
    tags = {
        **request.tags,
        BATCH_TAG: request.partition_key,
        "dagster/partition": request.partition_key,
        SUBMITTED_BY_TAG: "aimass-cli",
    }
    argv = [
        venv_executable("dagster"),
        "job",
        "launch",
        "-w",
        str(ROOT / "workspace.yaml"),
        "-j",
        uc.lifecycle_job,
        "--config-json",
        json.dumps(run_config),
        "--tags",
        json.dumps(tags),
        "--run-id",
        run_id,
    ]
    proc = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=600, preexec_fn=reset_signals, check=False
    )
    if proc.returncode != 0 or instance.get_run_by_id(run_id) is None:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise QueueError(
            f"{uc.name}: could not queue the run of batch {request.partition_key} (exit {proc.returncode}): {last}"
        )
    return run_id


def submit_batches(instance: DagsterInstance, uc: UseCase, runs: list[tuple[RunRequest, dict]]) -> None:
    """Queue each batch's run unless it already has one; prints what happened to each."""
    for request, run_config in runs:
        batch = request.partition_key
        already = existing_run(instance, uc, batch)
        if already is not None:
            print(
                f"[{uc.name}] batch {batch}: already has run {already} (the sensor's or an earlier command's)"
            )
            continue
        run_id = submit(instance, uc, request, run_config)
        print(f"[{uc.name}] batch {batch}: queued as run {run_id}; the daemon runs it (see the Dagster UI)")


# An in-process run (`aimass run`/`ingest` without a daemon) carries its process; no run monitor watches it.
CLI_PID_TAG = "aimass/cli_pid"
CLI_HOST_TAG = "aimass/cli_host"


def owned_by_this_process(request: RunRequest) -> RunRequest:
    """``request`` tagged with this process, so a later command can tell its run died with it (SIGKILL)."""
    import socket

    tags = {**request.tags, CLI_PID_TAG: str(os.getpid()), CLI_HOST_TAG: socket.gethostname()}
    return request.with_replaced_attrs(tags=tags)


def fail_orphaned_runs(instance: DagsterInstance, uc: UseCase) -> list[str]:
    """Mark FAILED every in-process run of the use case whose CLI process on this host is gone: a killed
    `aimass run` would otherwise show as running forever. Returns their run ids."""
    import socket

    host, orphans = socket.gethostname(), []
    started = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED]
    for run in instance.get_runs(filters=RunsFilter(tags={USE_CASE_TAG: uc.name}, statuses=started)):
        pid = run.tags.get(CLI_PID_TAG)
        if pid is None or run.tags.get(CLI_HOST_TAG) != host or _alive(int(pid)):
            continue
        instance.report_run_failed(
            run, f"the `aimass` process {pid} running it ended without finishing it (killed); run it again"
        )
        orphans.append(run.run_id)
    return orphans


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
