"""Shadow and canary inside a running service: which model answers, and the shadow scored off the request path.

A thread polls the lake's serving state (``core.rollout``, written by `aimass shadow` / `aimass canary`) every
``poll_s`` seconds and loads the versions it names next to the champion (the champion's own loader, vetted and
prepared alike). A request then:

- goes to the canary when its entity's hash falls in the canary's share (``core.routing``); if the canary fails
  to score it, the champion answers instead and the failure counts against the canary (a guard metric): the
  client never sees a canary's error;
- is answered, and only then handed to the shadow queue (when its entity falls in the shadow's share); one
  background thread scores what is queued in batches and logs it to ``predictions_shadow/`` under the served
  row's ``prediction_id``. The queue is bounded: when the shadow falls behind, its work is dropped and counted,
  the request never waits. A shadow answer has no path back to a client.

Per-arm request counts, errors and latency go to ``rollout_stats/`` in the lake for the canary's guards.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from aimass_pipeline.core.rollout import Arm, read_state, stats_parts
from aimass_pipeline.core.routing import entity_key, routes_to_challenger
from aimass_pipeline.serving.served_model import ServedModel

log = logging.getLogger(__name__)

SHADOW_QUEUE = 2_000  # requests waiting to be shadow-scored; beyond it the shadow's work is dropped
SHADOW_BATCH = 256  # requests scored together by the shadow thread
# The shadow thread lets requests gather this long before it scores them as one batch: one model call per
# ~10 requests instead of one each (measured in bench/rollout.py: the per-call cost dominates single rows).
SHADOW_LINGER_S = 0.05
Score = Callable[[ServedModel, list[dict[str, Any]], str, str], list[dict[str, Any]]]


class ArmStats:
    """Requests, errors and recent latencies per role, for the guards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, list[int]] = {}
        self.latency: dict[str, deque[float]] = {}

    def add(self, role: str, seconds: float, error: bool = False) -> None:
        with self._lock:
            row = self.counts.setdefault(role, [0, 0])
            row[0] += 1
            row[1] += int(error)
            self.latency.setdefault(role, deque(maxlen=5_000)).append(seconds)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                role: {
                    "requests": n,
                    "errors": errors,
                    "p99_ms": float(np.quantile(list(self.latency[role]), 0.99) * 1000)
                    if self.latency.get(role)
                    else None,
                }
                for role, (n, errors) in self.counts.items()
            }

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.latency.clear()


class RolloutArms:
    """The shadow and canary of one service worker; inactive (every request to the champion) without a lake."""

    def __init__(
        self,
        use_case: str,
        lake: Any | None,
        poll_s: float,
        load: Callable[[str], ServedModel],
        shadow_log: Any | None,
        writer: str,
    ) -> None:
        self.use_case = use_case
        self.lake = lake
        self.poll_s = poll_s
        self.load = load
        self.shadow_log = shadow_log
        self.writer = writer
        self.canary: tuple[Arm, ServedModel] | None = None
        self.shadow: tuple[Arm, ServedModel] | None = None
        self.stats = ArmStats()
        self.shadow_dropped = 0
        self.shadow_scored = 0
        self._loaded: dict[str, ServedModel] = {}
        self._refused: dict[str, str] = {}  # arm id -> why its version could not be loaded
        self._queue: queue.Queue[
            tuple[ServedModel, list[dict[str, Any]], list[dict[str, Any]], str] | None
        ] = queue.Queue(SHADOW_QUEUE)
        self._score: Score | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- the request path -------------------------------------------------------------------------------
    def answer(
        self, champion: ServedModel, rows: list[dict[str, Any]], request_id: str, score: Score
    ) -> tuple[ServedModel, list[dict[str, Any]]]:
        """Score ``rows`` with the model their entity is routed to; returns the model that answered."""
        started = time.perf_counter()
        canary = self.canary
        if canary is not None and routes_to_challenger(self.use_case, entity_key(rows[0]), canary[0].share):
            try:
                outputs = score(canary[1], rows, request_id, "canary")
            except Exception:  # noqa: BLE001 - the champion answers; the failure is the canary's guard metric
                log.exception(
                    "canary version %s failed a request; the champion answered it", canary[1].version
                )
                self.stats.add("canary", time.perf_counter() - started, error=True)
            else:
                self.stats.add("canary", time.perf_counter() - started)
                self._to_shadow(rows, outputs, request_id)
                return canary[1], outputs
        started = time.perf_counter()
        outputs = score(champion, rows, request_id, "served")
        self.stats.add("served", time.perf_counter() - started)
        self._to_shadow(rows, outputs, request_id)
        return champion, outputs

    def _to_shadow(self, rows: list[dict[str, Any]], outputs: list[dict[str, Any]], request_id: str) -> None:
        shadow = self.shadow
        if shadow is None or not routes_to_challenger(self.use_case, entity_key(rows[0]), shadow[0].share):
            return
        try:
            self._queue.put_nowait((shadow[1], rows, outputs, request_id))
        except queue.Full:
            self.shadow_dropped += 1

    # -- the background ---------------------------------------------------------------------------------
    def _shadow_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            until = time.monotonic() + SHADOW_LINGER_S
            while len(batch) < SHADOW_BATCH:
                try:
                    more = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            try:
                self._score_shadow(batch)
            except Exception:  # noqa: BLE001 - a broken shadow must not take the worker down
                log.exception("shadow scoring of %d requests failed", len(batch))

    def _score_shadow(
        self, batch: list[tuple[ServedModel, list[dict[str, Any]], list[dict[str, Any]], str]]
    ) -> None:
        assert self._score is not None
        for model in {id(b[0]): b[0] for b in batch}.values():
            mine = [b for b in batch if b[0] is model]
            rows = [r for b in mine for r in b[1]]
            outputs = self._score(model, rows, "", "shadow")
            at = 0
            for _, records, served, request_id in mine:
                part = outputs[at : at + len(records)]
                at += len(records)
                for out, answer in zip(part, served, strict=True):
                    out["prediction_id"] = answer["prediction_id"]  # the pair shares the served row's id
                if self.shadow_log is not None:  # inputs logged once, with the served row of that id
                    self.shadow_log.log(
                        [{}] * len(part),
                        part,
                        model.name,
                        model.version,
                        request_id=request_id,
                        role="shadow",
                    )
            self.shadow_scored += len(rows)

    def poll_once(self) -> None:
        """Read the serving state, load what it names, and write this worker's counters for the canary. An arm
        whose version cannot be loaded stays off (the champion answers), and the canary's counters say why."""
        state = read_state(self.lake, self.use_case)
        self.shadow = self._arm(state.shadow)
        canary = self._arm(state.canary)
        if canary is None or self.canary is None or canary[0].id != self.canary[0].id:
            self.stats.reset()  # a new canary's guards start from zero
        self.canary = canary
        if state.canary is not None:
            body = {
                "writer": self.writer,
                "at": time.time(),
                "arms": self.stats.snapshot(),
                "load_error": self._refused.get(state.canary.id),
            }
            self.lake.write_bytes(
                json.dumps(body).encode(), *stats_parts(self.use_case, state.canary.id, self.writer)
            )

    def _arm(self, arm: Arm | None) -> tuple[Arm, ServedModel] | None:
        if arm is None or arm.id in self._refused:
            return None
        if arm.version not in self._loaded:
            try:
                self._loaded[arm.version] = self.load(arm.version)
            except Exception as exc:  # noqa: BLE001 - refused once per arm, with its reason; the champion serves
                self._refused[arm.id] = f"{type(exc).__name__}: {exc}"
                log.error(
                    "%s: version %s refused for its arm: %s",
                    self.use_case,
                    arm.version,
                    self._refused[arm.id],
                )
                return None
            log.info("%s: loaded version %s for its %s %% arm", self.use_case, arm.version, arm.share)
        return arm, self._loaded[arm.version]

    def _poll_loop(self) -> None:
        while True:
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the champion keeps serving everything; the next poll retries
                log.exception("could not follow the serving state of %s", self.use_case)
            if self._stop.wait(self.poll_s):
                return

    def start(self, score: Score) -> None:
        if self.lake is None:
            log.info("%s: shadow and canary off (no lake)", self.use_case)
            return
        self._score = score
        for target, name in ((self._poll_loop, "aimass-rollout"), (self._shadow_loop, "aimass-shadow")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self._threads:
            try:  # after what is queued: the shadow scores it before it stops
                self._queue.put(None, timeout=10)
            except queue.Full:
                log.error(
                    "shadow of %s still %d requests behind at shutdown; not scored",
                    self.use_case,
                    SHADOW_QUEUE,
                )
        for thread in self._threads:
            thread.join(timeout=30)
