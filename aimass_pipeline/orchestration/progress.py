"""Follow the runs this process executes while they execute, for `aimass run`'s progress view.

A thread polls the instance's event log for runs tagged with this process and the use case, and hands each
step start, success, failure and materialisation to a callback as a plain ``StepEvent``. Polling the event log
(rather than hooking the executor) sees Celery steps exactly as in-process ones."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import DagsterEventType, DagsterInstance, Definitions, RunsFilter

from aimass_pipeline.orchestration.queue import CLI_PID_TAG
from aimass_pipeline.orchestration.use_case import USE_CASE_TAG

_KINDS = {
    DagsterEventType.STEP_START: "start",
    DagsterEventType.STEP_SUCCESS: "success",
    DagsterEventType.STEP_FAILURE: "failure",
    DagsterEventType.ASSET_MATERIALIZATION: "materialized",
}
ROW_COUNT = "dagster/row_count"


@dataclass(frozen=True)
class StepEvent:
    kind: str  # start | success | failure | materialized
    step: str
    stage: str | None  # the asset group the step belongs to, when known
    rows: int | None
    at: float  # unix seconds


def step_stages(defs: Definitions | None) -> dict[str, str]:
    """Step key -> stage (asset group) for every asset of the definitions; a step of a multi-asset or a
    check is missing, and the view keeps it in the stage before it."""
    if defs is None:
        return {}
    graph = defs.resolve_asset_graph()
    return {key.to_python_identifier(): graph.get(key).group_name for key in graph.materializable_asset_keys}


def _rows(event) -> int | None:
    materialization = event.dagster_event.step_materialization_data.materialization
    value = materialization.metadata.get(ROW_COUNT)
    return int(value.value) if value is not None else None


@contextmanager
def watched_runs(
    instance: DagsterInstance,
    use_case: str,
    stages: dict[str, str],
    on_event: Callable[[StepEvent], None],
    on_error: Callable[[Exception], None],
    interval_s: float = 0.5,
) -> Iterator[None]:
    """Call ``on_event`` for every step event of this process's runs of ``use_case`` begun inside the block,
    in order, from a background thread; every event is delivered before the block exits. A fault reading
    the event log goes to ``on_error`` once and ends the view, never the run it shows."""
    since = datetime.now(UTC)
    cursors: dict[str, str | None] = {}
    stop = threading.Event()

    def poll() -> None:
        runs = instance.get_runs(
            filters=RunsFilter(
                tags={USE_CASE_TAG: use_case, CLI_PID_TAG: str(os.getpid())}, created_after=since
            )
        )
        for run in reversed(runs):  # oldest first: a batch's raw-zone run before the lifecycle run
            connection = instance.get_records_for_run(
                run.run_id, cursor=cursors.get(run.run_id), of_type=set(_KINDS)
            )
            cursors[run.run_id] = connection.cursor
            for record in connection.records:
                entry = record.event_log_entry
                kind = _KINDS[entry.dagster_event.event_type]
                step = entry.step_key or ""
                on_event(
                    StepEvent(
                        kind,
                        step,
                        stages.get(step),
                        _rows(entry) if kind == "materialized" else None,
                        entry.timestamp,
                    )
                )

    failed: list[Exception] = []

    def guarded_poll() -> None:
        if failed:
            return
        try:
            poll()
        except Exception as exc:  # noqa: BLE001 - a progress view must never fail the run it shows
            failed.append(exc)
            on_error(exc)

    def loop() -> None:
        while not stop.wait(interval_s):
            guarded_poll()

    thread = threading.Thread(target=loop, name=f"progress-{use_case}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        guarded_poll()
