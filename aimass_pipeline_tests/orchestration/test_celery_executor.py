"""The breast_cancer lifecycle on two real Celery workers (`aimass worker`), training routed to its own queue.

The broker is the machine's RabbitMQ on 5672 when it answers; otherwise the test starts its own
``redis-server`` (a binary on this machine, not a PyPI package) and fails with a clear message without one.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from mlflow.tracking import MlflowClient

from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for, free_port

USE_CASE = "breast_cancer"
RUN = [AIMASS, "run", "--use-case", USE_CASE, "--max-trials", "2"]
KILLED_STEP = f"{USE_CASE}__logreg_params"  # tuning: seconds long, on the training queue


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _purge(broker: str, queues: list[str]) -> None:
    """Drop messages an earlier, aborted test left on the shared broker's queues."""
    import kombu

    with kombu.Connection(broker) as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - a queue that does not exist yet has nothing to purge
                pass
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: BLE001 - the broker closed it after a 404 already
                    pass


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _answers(5672):
        url = "pyamqp://guest:guest@127.0.0.1:5672//"
        _purge(url, ["dagster", "training"])
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(
            "no RabbitMQ on 127.0.0.1:5672 and no redis-server on PATH: the Celery test needs a broker"
        )
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path_factory.mktemp("redis"),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers(port):
        assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
        time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


class Worker:
    def __init__(self, env: dict, queue: str, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [AIMASS, "worker", "--queue", queue, "--concurrency", "1", "--name", f"test-{queue}"],
            env=env,
            cwd=ROOT,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids: set[int] = set()  # every pool process seen: a killed one is replaced

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log.read_text():
            assert self.process.poll() is None, f"worker exited: {self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"worker not ready: {self.log.read_text()[-3000:]}"
            time.sleep(0.2)

    def children(self) -> set[int]:
        self.pids |= _children(self.process.pid)
        return self.pids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # Celery's warm shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, broker: str) -> Iterator[tuple[Path, dict, dict]]:
    base = tmp_path_factory.mktemp("celery")
    home = base / "home"
    env = {**env_for(home), "AIMASS_EXECUTOR": "celery", "AIMASS_CELERY_BROKER": broker}
    workers: dict[str, Worker] = {}
    try:
        # One after the other: two processes creating a fresh MLflow SQLite store at once race its migration.
        for queue in ("dagster", "training"):
            workers[queue] = Worker(env, queue, base / f"worker-{queue}.log")
            workers[queue].wait_ready()
        yield home, env, workers
    finally:
        for worker in workers.values():
            worker.stop()


def _step_events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> list:
    return [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=kind).records]


def _runs(home: Path) -> list:
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    with DagsterInstance.get() as instance:
        return list(instance.get_runs(filters=RunsFilter(tags={"aimass/use_case": USE_CASE})))


def test_lifecycle_on_two_workers_training_on_its_own_queue(cluster: tuple[Path, dict, dict]) -> None:
    home, env, workers = cluster
    started = time.monotonic()
    result = subprocess.run(RUN, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"celery lifecycle: {time.monotonic() - started:.1f}s")
    pids = {q: w.children() for q, w in workers.items()}
    [run] = [r for r in _runs(home) if r.job_name == f"{USE_CASE}_lifecycle"]
    assert run.status == DagsterRunStatus.SUCCESS
    with DagsterInstance.get() as instance:
        starts = {
            e.step_key: e.dagster_event.pid
            for e in _step_events(instance, run.run_id, DagsterEventType.STEP_START)
        }
    assert len(set(starts.values())) >= 2, f"every step ran in one process: {starts}"
    training = {k for k in starts if k.endswith(("_candidate", "_params"))}
    assert training and {starts[k] for k in training} <= pids["training"], (starts, pids)
    assert {starts[k] for k in set(starts) - training} <= pids["dagster"], (starts, pids)
    settings = load_settings(home)
    champion = MlflowClient(settings.mlflow_tracking_uri).get_model_version_by_alias(USE_CASE, "champion")
    assert champion.tags["dagster.run_id"] == run.run_id


SELECTION_RUN = """
import json, sys
from dagster import AssetKey, DagsterInstance
from aimass_pipeline.collection.landing import Batch
from aimass_pipeline.collection.sensors import batch_request
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.settings import load_settings
settings = load_settings().prepare()
from aimass_pipeline.definitions import build_definitions
from aimass_pipeline.orchestration.jobs import execute_batch, run_failures
from aimass_pipeline.orchestration.use_case import UseCase
uc = UseCase(settings.use_case_specs()[sys.argv[1]])
stored = Lake(settings.lake_url, settings.storage_options).raw_batches(uc.name)
request = batch_request(uc, Batch(stored[-1]["batch_id"], ()))
run_config = {**request.run_config, "ops": {f"{uc.name}__logreg_params": {"config": {"max_trials": 2}}}}
with DagsterInstance.get() as instance:
    result = execute_batch(build_definitions(settings.use_case_specs()), uc, instance, request, run_config,
                           asset_selection=[AssetKey([uc.name, k]) for k in sys.argv[2:]])
print(json.dumps({"run_id": result.run_id, "success": result.success, "failures": run_failures(result)}))
"""


def _selection_run(env: dict, keys: list[str]) -> dict:
    """Part of the lifecycle, coordinated by a fresh process as `aimass run` would: steps on the workers."""
    done = subprocess.run(
        [sys.executable, "-c", SELECTION_RUN, USE_CASE, *keys],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_killed_mid_step_reruns_that_step_once(cluster: tuple[Path, dict, dict]) -> None:
    home, env, workers = cluster
    known = {r.run_id for r in _runs(home)}
    killed: list[int] = []

    def kill_the_step_once_it_starts() -> None:
        deadline = time.monotonic() + 300
        with DagsterInstance.get() as instance:
            while not killed and time.monotonic() < deadline:
                for run in instance.get_runs(filters=RunsFilter(tags={"aimass/use_case": USE_CASE}), limit=1):
                    for entry in _step_events(instance, run.run_id, DagsterEventType.STEP_START):
                        if run.run_id not in known and entry.step_key == KILLED_STEP:
                            os.kill(entry.dagster_event.pid, signal.SIGKILL)
                            killed.append(entry.dagster_event.pid)
                time.sleep(0.05)

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    killer = threading.Thread(target=kill_the_step_once_it_starts, daemon=True)
    killer.start()
    result = _selection_run(env, ["logreg_params", "logreg_candidate"])
    killer.join(10)
    assert killed, f"{KILLED_STEP} never started"
    assert result["success"], result["failures"]
    assert killed[0] not in _children(workers["training"].process.pid), "the killed pool process is back"
    with DagsterInstance.get() as instance:
        starts = [
            e
            for e in _step_events(instance, result["run_id"], DagsterEventType.STEP_START)
            if e.step_key == KILLED_STEP
        ]
        stored = [
            e
            for e in _step_events(instance, result["run_id"], DagsterEventType.ASSET_MATERIALIZATION)
            if e.step_key == KILLED_STEP
        ]
    # Celery put the step back on its queue (late ack, reject on a lost worker); a fresh pool process ran it.
    assert [e.dagster_event.pid for e in starts][0] == killed[0] != starts[-1].dagster_event.pid
    assert len(starts) == 2, f"{KILLED_STEP} started {len(starts)} times"
    assert len(stored) == 1, f"{KILLED_STEP} materialised {len(stored)} times"


def test_a_failing_step_shows_its_error_in_the_run(cluster: tuple[Path, dict, dict]) -> None:
    home, env, _ = cluster
    # The lake lost the training set: the tuning step that reads it fails on its worker, naming the file.
    lost = list((home / "lake" / "assets" / USE_CASE).glob("training_set.*"))
    assert lost, "the first test's run stored no training set"
    for path in lost:
        path.unlink()
    result = _selection_run(env, ["logreg_params"])
    assert not result["success"]
    failures = result["failures"]
    assert any(
        line.startswith(f"step {USE_CASE}__logreg_params failed") and "training_set is not stored" in line
        for line in failures
    ), failures
