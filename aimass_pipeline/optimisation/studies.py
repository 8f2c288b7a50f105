"""Where an optuna study lives when several workers share it, and how a worker takes its share of the budget.

The budget is a queue: the study is created once (parallel creation races, optuna issue 1092) with one WAITING
trial per unit of budget, and every worker pops trials until the queue is empty. A worker never creates a trial
of its own, so N workers spend exactly the budget. A worker that dies mid-trial stops beating; the next worker
to claim a trial fails the stale one and ``RetryHeartbeatStaleTrialCallback`` queues a copy with its parameters.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

# Set on every trial a worker claimed: which process ran it (tests and the bench read it).
WORKER_ATTR = "aimass.worker_pid"


@dataclass(frozen=True)
class StudyStore:
    """An RDB URL optuna can share between processes: ``postgresql+psycopg2://…`` or ``sqlite:///path``.

    Heartbeats need an RDB (optuna's journal storage has none), so a journal file is not offered.
    """

    url: str
    heartbeat_s: int = 30
    grace_s: int = 90  # a trial whose worker has not beaten for this long is failed and retried
    max_retry: int = 2

    def __post_init__(self) -> None:
        if not self.url.startswith(("postgresql", "sqlite:///", "mysql")):
            raise ValueError(
                f"tuning storage {self.url!r} is not an optuna RDB URL (postgresql+psycopg2://… or sqlite:///…)"
            )
        if not 0 < self.heartbeat_s < self.grace_s:
            raise ValueError(f"need 0 < heartbeat_s < grace_s, got {self.heartbeat_s} and {self.grace_s}")

    @contextlib.contextmanager
    def claim_lock(self) -> Iterator[None]:
        """PostgreSQL's SELECT … FOR UPDATE makes optuna's WAITING→RUNNING switch atomic; SQLite has no row
        lock, and two processes were seen claiming one trial. SQLite's workers share a machine: a file lock."""
        if not self.url.startswith("sqlite:///"):
            yield
            return
        with open(self.url.removeprefix("sqlite:///") + ".claim-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def open_storage(store: StudyStore) -> RDBStorage:
    """A small pool per worker, so N workers of a study never exhaust PostgreSQL: one connection, plus one
    overflow for the heartbeat thread (with ``max_overflow=0`` it waited 30 s for the trial's connection and
    the storage failed with "QueuePool limit of size 1 overflow 0 reached")."""
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if store.url.startswith("sqlite"):
        # Writers queue on SQLite's file lock; wait for it rather than fail after the default 5 s.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs.update(pool_size=1, max_overflow=1)
    with warnings.catch_warnings():
        # Heartbeats and the retry callback are "experimental" in optuna since 2.8; the warning says nothing new.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            store.url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=store.heartbeat_s,
            grace_period=store.grace_s,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=store.max_retry),
        )


def prepare_study(
    storage: RDBStorage, name: str, direction: str, n_trials: int, enqueue: list[dict] | None = None
) -> bool:
    """Create the study and queue its budget, once; True when this call created it, False when it existed.

    An existing study keeps its queue: a rerun after a crash finishes the remaining budget, it adds none.
    """
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction)
    except optuna.exceptions.DuplicatedStudyError:
        return False
    fixed = list(enqueue or [])
    if len(fixed) > n_trials:
        raise ValueError(f"{len(fixed)} enqueued trials exceed the budget of {n_trials}")
    for params in fixed + [{}] * (n_trials - len(fixed)):  # {} leaves every parameter to the sampler
        study.enqueue_trial(params)
    return True


_BARRIER: dict[str, Any] = {}


def keep_barrier(start: Any) -> None:
    """A pool initializer: the start barrier reaches a spawned worker only as it starts, not with a task."""
    _BARRIER["start"] = start


def start_barrier() -> Any:
    return _BARRIER.get("start")


@contextlib.contextmanager
def may_have_children() -> Iterator[None]:
    """A step on a Celery worker runs in a daemonic prefork child, and multiprocessing refuses children to a
    daemonic process (so that they cannot outlive it). Ours may: the study holds their work, a step retried
    after its worker died loads the same study, and an orphaned worker only finishes trials of the queue."""
    process = multiprocessing.current_process()
    config = process._config  # the flag Process.start checks; no public setter
    daemon, authkey = config.get("daemon"), process.authkey
    config["daemon"] = False
    # billiard leaves its own AuthenticationString here, which only billiard may pickle for a child.
    config["authkey"] = multiprocessing.process.AuthenticationString(bytes(authkey))
    try:
        yield
    finally:
        config["daemon"] = daemon
        config["authkey"] = authkey


def _claim(study: optuna.Study) -> optuna.Trial | None:
    """Move one WAITING trial to RUNNING; None when the queue is empty. set_trial_state_values is the
    storage's compare-and-set, so two workers never claim the same trial."""
    storage = study._storage  # the study's own storage: the claim is its compare-and-set
    for frozen in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, frozen._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class _Heartbeat:
    """Beats for one trial on a daemon thread, so a worker killed mid-trial stops beating."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(storage, trial_id, interval_s), daemon=True)

    def _beat(self, storage: RDBStorage, trial_id: int, interval_s: float) -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if self._stop.wait(interval_s):
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def work(
    study: optuna.Study, storage: RDBStorage, objective: Callable[[optuna.Trial], float], store: StudyStore
) -> int:
    """Run queued trials until none is left; the number this worker ran. A failing objective fails its
    trial and raises, so the caller sees the exception itself."""
    ran = 0
    while True:
        # Under the claim lock: on SQLite two workers could both fail one stale trial and retry it twice.
        with store.claim_lock():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # a dead worker's trial goes back into the queue
            trial = _claim(study)
        if trial is None:
            # A RUNNING trial may be a dead worker's: it turns stale after grace_s and is queued again, so
            # the budget is only spent once no trial runs anywhere.
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                return ran
            time.sleep(min(store.heartbeat_s, 1.0))
            continue
        trial.set_user_attr(WORKER_ATTR, os.getpid())
        with _Heartbeat(storage, trial._trial_id, store.heartbeat_s):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            else:
                study.tell(trial, value)
        ran += 1
