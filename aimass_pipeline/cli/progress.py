"""`aimass run`'s progress view: one line per lifecycle stage as it finishes (rows, steps, seconds), and on a
terminal a live line for the step running now. It folds the plain step events the orchestration's watcher
reads from the event log (orchestration/progress.py), so it imports no Dagster."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import IO, Protocol


class StepEventLike(Protocol):
    kind: str
    step: str
    stage: str | None
    rows: int | None
    at: float


@dataclass
class _Stage:
    name: str
    started: float
    ended: float
    steps: set[str] = field(default_factory=set)
    rows: int | None = None
    failed: bool = False


def stage_line(use_case: str, stage: _Stage) -> str:
    rows = f"{stage.rows:>10,} rows" if stage.rows is not None else f"{'':>15}"
    state = "FAILED" if stage.failed else "done  "
    steps = f"{len(stage.steps)} step{'s' if len(stage.steps) != 1 else ''}"
    seconds = stage.ended - stage.started
    return f"[{use_case}]   {state} {stage.name:<15} {rows}  {steps:>8}  {seconds:6.1f}s"


class StageView:
    """Receives step events in order (from the watcher's thread) and prints each stage once it is over: the
    next stage began, or the run ended. With ``live`` (a terminal), a rich status shows the running step."""

    def __init__(self, use_case: str, out: IO[str], live: bool) -> None:
        self.use_case, self.out = use_case, out
        self.current: _Stage | None = None
        self.running: str | None = None
        self.lock = threading.Lock()
        self.status = None
        if live:
            from rich.console import Console

            self.status = Console(file=out).status("", spinner="dots")
            self.status.start()

    def __call__(self, event: StepEventLike) -> None:
        with self.lock:
            stage = event.stage or (self.current.name if self.current else "starting")
            if self.current is None or (event.kind == "start" and stage != self.current.name):
                self._finish()
                self.current = _Stage(stage, event.at, event.at)
            current = self.current
            current.ended = max(current.ended, event.at)
            if event.step:
                current.steps.add(event.step)
            if event.rows is not None:
                current.rows = max(current.rows or 0, event.rows)
            if event.kind == "failure":
                current.failed = True
            self.running = event.step if event.kind == "start" else self.running
            if self.status is not None:
                elapsed = time.time() - current.started
                step = (self.running or "").removeprefix(f"{self.use_case}__")
                self.status.update(f"[{self.use_case}] {current.name}: {step} ({elapsed:.0f}s in stage)")

    def unavailable(self, exc: Exception) -> None:
        print(
            f"[{self.use_case}]   (progress view stopped: {exc}; the run goes on)", file=self.out, flush=True
        )

    def _finish(self) -> None:
        if self.current is not None:
            if self.status is not None:
                self.status.console.print(stage_line(self.use_case, self.current), highlight=False)
            else:
                print(stage_line(self.use_case, self.current), file=self.out, flush=True)
        self.current = None

    def close(self) -> None:
        with self.lock:
            self._finish()
            if self.status is not None:
                self.status.stop()
