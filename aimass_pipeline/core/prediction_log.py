"""Write every served prediction to the lake, off the request path.

``PredictionLogger.log`` only appends a reference to the request's records and outputs to an in-memory buffer
under a lock; a daemon thread turns the buffer into Parquet every ``flush_interval_s`` seconds (and once more
on ``close()``), one file per flush and hour:

    predictions/<use_case>/date=YYYY-MM-DD/hour=HH/<YYYYmmddTHHMMSSffffffZ>-<uuid>.parquet

with the columns ``prediction_id, request_id, ts`` (UTC), ``model_name, model_version, inputs`` (the record as
a JSON object), ``probability, label, probabilities`` (JSON, multiclass only, else null).

What can be lost:

- a crash (SIGKILL, OOM, power loss) loses what is still buffered: at most one flush interval of predictions,
  plus whatever earlier flushes failed to write (see next point). A clean stop (SIGTERM -> ``close()``) loses
  nothing that can be written.
- a failing flush (lake unreachable, credentials expired) is logged as an ERROR with its traceback and the rows
  stay buffered for the next attempt; while the lake stays down the buffer is capped at ``max_buffer`` rows and
  the oldest rows beyond it are dropped, counted in ``dropped_rows`` and reported to ``on_dropped`` (a
  Prometheus counter in the service) -- serving never blocks or runs out of memory because the lake is down.

Each server worker has its own logger; the uuid in the file name keeps their files apart.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import pandas as pd

log = logging.getLogger(__name__)

PREFIX = "predictions"
COLUMNS = (
    "prediction_id",
    "request_id",
    "ts",
    "model_name",
    "model_version",
    "inputs",
    "probability",
    "label",
    "probabilities",
)


@dataclass(frozen=True)
class _Batch:
    """One request, kept as the service handed it over: building rows is the flush thread's job."""

    ts: datetime
    request_id: str
    model_name: str
    model_version: str
    records: list[dict[str, Any]]
    outputs: list[dict[str, Any]]

    def tail(self, n: int) -> _Batch:
        return _Batch(
            self.ts,
            self.request_id,
            self.model_name,
            self.model_version,
            self.records[-n:],
            self.outputs[-n:],
        )


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
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_buffer}")
        self.fs, root = fsspec.core.url_to_fs(lake_url, **(storage_options or {}))
        self.base = "/".join([root.rstrip("/"), PREFIX, use_case])
        protocols = (self.fs.protocol,) if isinstance(self.fs.protocol, str) else tuple(self.fs.protocol)
        self._local = "file" in protocols
        self.use_case = use_case
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self.on_dropped = on_dropped
        self.dropped_rows = 0
        self.failed_flushes = 0
        self._buffer: deque[_Batch] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        # Serialises flushes: the thread's and close()'s must not write the same rows twice.
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"prediction-log-{use_case}", daemon=True)
        if start:
            self._thread.start()

    @property
    def buffered_rows(self) -> int:
        return self._rows

    def log(
        self,
        records: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        model_name: str,
        model_version: str,
        request_id: str,
    ) -> None:
        """Queue one request's predictions; ``records[i]`` produced ``outputs[i]``."""
        if len(records) != len(outputs):
            raise ValueError(f"{len(records)} records but {len(outputs)} outputs")
        if not records:
            return
        batch = _Batch(datetime.now(UTC), request_id, model_name, model_version, records, outputs)
        with self._lock:
            self._buffer.append(batch)
            self._rows += len(records)
            dropped = self._trim_locked()
        self._report_dropped(dropped)

    def flush(self) -> int:
        """Write everything buffered now; return the rows written. What fails stays buffered."""
        with self._flush_lock:
            with self._lock:
                batches, self._buffer = list(self._buffer), deque()
                self._rows = 0
            by_hour: dict[datetime, list[_Batch]] = {}
            for batch in batches:
                by_hour.setdefault(batch.ts.replace(minute=0, second=0, microsecond=0), []).append(batch)
            written = 0
            for hour in sorted(by_hour):
                try:
                    written += self._write(hour, by_hour[hour])
                except Exception:
                    # Only this hour's file and later ones are retried: rewriting the hours already
                    # written would duplicate their rows.
                    self._requeue([b for h in sorted(by_hour) if h >= hour for b in by_hour[h]])
                    break
            return written

    def _requeue(self, batches: list[_Batch]) -> None:
        self.failed_flushes += 1
        rows = sum(len(b.records) for b in batches)
        log.exception(
            "prediction log: could not write %d rows to %s; keeping them for the next flush",
            rows,
            self.fs.unstrip_protocol(self.base),
        )
        with self._lock:
            # Older than anything logged meanwhile, so back in front; the cap then drops the oldest.
            self._buffer.extendleft(reversed(batches))
            self._rows += rows
            dropped = self._trim_locked()
        self._report_dropped(dropped)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the thread and flush what is left; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.flush()
        if self._rows:
            log.error("prediction log: %d rows could not be written before shutdown and are lost", self._rows)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:  # flush() handles write errors; this keeps the thread alive on anything else
                log.exception("prediction log: flush thread error")

    def _trim_locked(self) -> int:
        dropped = 0
        while self._rows > self.max_buffer:
            oldest = self._buffer[0]
            excess = self._rows - self.max_buffer
            if len(oldest.records) <= excess:
                self._buffer.popleft()
                n = len(oldest.records)
            else:
                self._buffer[0] = oldest.tail(len(oldest.records) - excess)
                n = excess
            self._rows -= n
            dropped += n
        self.dropped_rows += dropped
        return dropped

    def _report_dropped(self, dropped: int) -> None:
        if not dropped:
            return
        log.error(
            "prediction log: buffer full (%d rows), dropped the %d oldest predictions",
            self.max_buffer,
            dropped,
        )
        if self.on_dropped is not None:
            try:
                self.on_dropped(dropped)
            except Exception:
                log.exception("prediction log: on_dropped callback failed")

    def _frame(self, batches: list[_Batch]) -> pd.DataFrame:
        rows = [
            {
                "prediction_id": out["prediction_id"],
                "request_id": batch.request_id,
                "ts": batch.ts,
                "model_name": batch.model_name,
                "model_version": batch.model_version,
                "inputs": json.dumps(record, default=str),
                "probability": float(out["probability"]),
                "label": str(out["label"]),
                "probabilities": json.dumps(out["probabilities"]) if out.get("probabilities") else None,
            }
            for batch in batches
            for record, out in zip(batch.records, batch.outputs, strict=True)
        ]
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        # An all-null column would otherwise be written as Parquet type "null" and clash with later files.
        frame["probabilities"] = frame["probabilities"].astype("string")
        return frame

    def _write(self, hour: datetime, batches: list[_Batch]) -> int:
        frame = self._frame(batches)
        folder = f"{self.base}/date={hour:%Y-%m-%d}/hour={hour:%H}"
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.parquet"
        data = frame.to_parquet(index=False)
        self.fs.makedirs(folder, exist_ok=True)
        if self._local:
            # A local write is not atomic: a reader listing the folder could see half a file. Dot-files are
            # skipped by pyarrow/duckdb dataset readers, and the rename is atomic.
            tmp = f"{folder}/.{name}.tmp"
            with self.fs.open(tmp, "wb") as handle:
                handle.write(data)
            self.fs.mv(tmp, f"{folder}/{name}")
        else:
            # Object stores publish a whole object or nothing.
            with self.fs.open(f"{folder}/{name}", "wb") as handle:
                handle.write(data)
        return len(frame)
