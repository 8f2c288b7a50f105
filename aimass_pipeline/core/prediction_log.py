"""Write every served prediction to the lake, off the request path while the buffer has room.

``PredictionLogger.log`` appends a reference to the request's records and outputs to an in-memory buffer
under a lock; a daemon thread writes the buffer as Parquet every ``flush_interval_s`` seconds (and once more
on ``close()``), one part per flush and hour (``prediction_parts.Part``):

    predictions/<use_case>/date=YYYY-MM-DD/hour=HH/<YYYYmmddTHHMMSSffffffZ>-<writer>-<seq>.parquet

with the columns ``prediction_id, request_id, ts`` (UTC), ``model_name, model_version, inputs`` (the record as
a JSON object), ``probability, label, probabilities`` (JSON, multiclass only, else null), ``role`` (served,
canary; a shadow's rows go to their own ``prefix``, ``predictions_shadow``, under the served row's id).

Nothing lost while the lake takes writes:

- a full buffer (more than ``max_buffer`` rows) wakes the flush thread at once and the request that filled
  it waits for the write (back-pressure), up to ``max_wait_s``, rather than the oldest rows being dropped;
  a lake that takes longer than that to answer counts as down;
- a failing write (lake unreachable, credentials expired) is logged as an ERROR with its traceback and its
  part is kept, under its name, for the next flush. Only while the lake is down (from a failed write to
  the next successful one) is the buffer capped at ``max_buffer`` rows: the oldest beyond it are dropped,
  counted in ``dropped_rows`` and reported to ``on_dropped`` (a Prometheus counter in the service), so serving
  never blocks on, or runs out of memory because of, a dead lake;
- a crash (SIGKILL, OOM) loses what is still buffered: at most one flush interval of predictions plus what
  waits for a down lake; a clean stop (SIGTERM -> ``close()``) flushes, and counts as dropped what it cannot.

Nothing written twice: a part's name is fixed when it is formed (first timestamp, the writer's id, a sequence
number), so a retried write overwrites the same object; readers also de-duplicate by ``prediction_id``.
Each server worker has its own writer id, which keeps their files apart.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fsspec

from aimass_pipeline.core.prediction_parts import (
    COLUMNS,
    PREFIX,
    Batch,
    Part,
    drop_oldest,
    hour_of,
    write_part,
)

__all__ = ["COLUMNS", "PREFIX", "PredictionLogger"]

log = logging.getLogger(__name__)

# A write slower than this is logged: the lake was down or struggling, though nothing was lost.
SLOW_WRITE_S = 5.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PredictionLogger:
    """Buffer predictions in memory and flush them to the lake as Parquet from a background thread."""

    def __init__(
        self,
        lake_url: str,
        use_case: str,
        flush_interval_s: float = 5.0,
        max_buffer: int = 10_000,
        storage_options: dict[str, Any] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        start: bool = True,
        clock: Callable[[], datetime] = _utc_now,
        max_wait_s: float = 5.0,
        api_key_id: str | None = None,
        prefix: str = PREFIX,
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_buffer}")
        self.fs, root = fsspec.core.url_to_fs(lake_url, **(storage_options or {}))
        self.base = "/".join([root.rstrip("/"), prefix, use_case])
        protocols = (self.fs.protocol,) if isinstance(self.fs.protocol, str) else tuple(self.fs.protocol)
        self._local = "file" in protocols
        self.use_case = use_case
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self.on_dropped = on_dropped
        self.clock = clock
        self.max_wait_s = max_wait_s
        self.api_key_id = api_key_id  # written with every row (never the key itself)
        self.dropped_rows = 0
        self.failed_flushes = 0
        self.writer = uuid.uuid4().hex[:12]
        self._seq = 0
        # Requests not yet given to a part, then parts formed but not yet written (older than the buffer).
        self._buffer: deque[Batch] = deque()
        self._parts: deque[Part] = deque()
        self._rows = 0
        self._failed_at: float | None = (
            None  # monotonic time of the last failed write; None once one succeeds
        )
        self._lock = threading.Lock()
        # Signalled after every flush: a request waiting for room in a full buffer re-checks.
        self._flushed = threading.Condition(self._lock)
        self._wake = threading.Event()
        # Serialises flushes: the thread's, close()'s and a full buffer's must not write the same part at once.
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"prediction-log-{use_case}", daemon=True)
        if start:
            self._thread.start()

    @property
    def buffered_rows(self) -> int:
        return self._rows

    @property
    def lake_down(self) -> bool:
        """The last write failed (or did not answer within ``max_wait_s``); the next that succeeds clears it."""
        return self._failed_at is not None

    def log(
        self,
        records: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        model_name: str,
        model_version: str,
        request_id: str,
        role: str = "served",
    ) -> None:
        """Queue one request's predictions; ``records[i]`` produced ``outputs[i]``. When that fills the
        buffer, write it now (the caller waits) unless the lake is down, in which case the oldest go."""
        if len(records) != len(outputs):
            raise ValueError(f"{len(records)} records but {len(outputs)} outputs")
        if not records:
            return
        batch = Batch(self.clock(), request_id, model_name, model_version, records, outputs, role)
        with self._lock:
            self._buffer.append(batch)
            self._rows += len(records)
            full = self._rows > self.max_buffer
        if not full:
            return
        if not self.lake_down:
            self._wait_for_room()
        with self._lock:
            dropped = self._trim_locked()
        self._report_dropped(dropped)

    def _wait_for_room(self) -> None:
        """Back-pressure: have the buffer written now and wait (at most ``max_wait_s``) until it has room."""
        if not self._thread.is_alive():  # no thread (start=False, or closed): the caller writes
            self.flush()
            return
        self._wake.set()
        deadline = time.monotonic() + self.max_wait_s
        with self._flushed:
            while self._rows > self.max_buffer and not self.lake_down:
                left = deadline - time.monotonic()
                if left <= 0:
                    # A lake this slow to answer is as good as down: the cap applies, the request goes on.
                    log.error(
                        "prediction log: no flush within %.1f s; treating the lake as down", self.max_wait_s
                    )
                    self._failed_at = time.monotonic()
                    return
                self._flushed.wait(left)

    def flush(self) -> int:
        """Write everything buffered now, oldest part first; return the rows written. A part that fails
        stays, with its name, for the next flush, and so does every part after it."""
        with self._flush_lock:
            with self._lock:
                self._form_parts_locked()
                pending = list(self._parts)
            written = 0
            for part in pending:
                with self._lock:
                    if not any(p is part for p in self._parts):
                        continue  # dropped meanwhile (lake down, buffer full)
                    batches, generation = list(part.batches), part.generation
                started = time.monotonic()
                try:
                    write_part(
                        self.fs, self.base, part.name, batches, local=self._local, api_key_id=self.api_key_id
                    )
                except Exception:
                    self._failed(part)
                    break
                took = time.monotonic() - started
                if took > SLOW_WRITE_S:
                    # The client's retries can outlast a short outage: the write succeeds, but late.
                    log.warning(
                        "prediction log: the lake was slow to answer: %d rows to %s/%s took %.1f s",
                        part.rows,
                        self.fs.unstrip_protocol(self.base),
                        part.name,
                        took,
                    )
                with self._lock:
                    self._failed_at = None
                    # A part trimmed while it was written keeps its place: what is left overwrites it next time.
                    if part.generation == generation:
                        self._parts.remove(part)
                        self._rows -= part.rows
                        written += part.rows
            with self._flushed:
                self._flushed.notify_all()
            return written

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the thread and flush what is left; what cannot be written is counted as dropped. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.flush()
        with self._lock:
            lost, self._rows = self._rows, 0
            self._buffer.clear()
            self._parts.clear()
            self.dropped_rows += lost
        if lost:
            log.error("prediction log: %d rows could not be written before shutdown and are lost", lost)
            self._report_dropped(lost, logged=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            # Every interval, or at once when a request finds the buffer full.
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except Exception:  # flush() handles write errors; this keeps the thread alive on anything else
                log.exception("prediction log: flush thread error")

    def _form_parts_locked(self) -> None:
        by_hour: dict[datetime, list[Batch]] = {}
        for batch in self._buffer:
            by_hour.setdefault(hour_of(batch), []).append(batch)
        self._buffer.clear()
        for hour in sorted(by_hour):
            self._seq += 1
            self._parts.append(Part.form(by_hour[hour], self.writer, self._seq))

    def _failed(self, part: Part) -> None:
        self.failed_flushes += 1
        self._failed_at = time.monotonic()
        log.exception(
            "prediction log: could not write %d rows to %s/%s; keeping them for the next flush (%d rows waiting)",
            part.rows,
            self.fs.unstrip_protocol(self.base),
            part.name,
            self._rows,
        )
        with self._lock:
            dropped = self._trim_locked()
        self._report_dropped(dropped)

    def _trim_locked(self) -> int:
        """Drop the oldest rows beyond ``max_buffer``: called only after a write failed or while it fails."""
        dropped = drop_oldest(self._parts, self._buffer, self._rows - self.max_buffer)
        self._rows -= dropped
        self.dropped_rows += dropped
        return dropped

    def _report_dropped(self, dropped: int, logged: bool = False) -> None:
        if not dropped:
            return
        if not logged:
            log.error(
                "prediction log: lake down and buffer full (%d rows), dropped the %d oldest predictions",
                self.max_buffer,
                dropped,
            )
        if self.on_dropped is not None:
            try:
                self.on_dropped(dropped)
            except Exception:
                log.exception("prediction log: on_dropped callback failed")
