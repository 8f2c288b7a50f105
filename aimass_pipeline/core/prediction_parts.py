"""What the prediction log buffers and writes: a request's rows (``Batch``) and the object a flush writes them
to (``Part``), named once so that a retried write replaces the same object instead of adding a second copy."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

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
    "role",  # served (the answer), canary (the answer, by the canary), shadow (never answered)
)


@dataclass(frozen=True)
class Batch:
    """One request, kept as the service handed it over: building rows is the flush thread's job."""

    ts: datetime
    request_id: str
    model_name: str
    model_version: str
    records: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    role: str = "served"

    def tail(self, n: int) -> Batch:
        return Batch(
            self.ts,
            self.request_id,
            self.model_name,
            self.model_version,
            self.records[-n:],
            self.outputs[-n:],
            self.role,
        )


@dataclass(eq=False)  # identity: two parts with equal rows are still two objects
class Part:
    """Rows bound for one Parquet object, ``date=YYYY-MM-DD/hour=HH/<first ts>-<writer>-<seq>.parquet``.

    The name is fixed when the part is formed and never reused for other rows: a flush that failed after
    the object landed (a timeout on the answer) is retried under the same name and overwrites it.
    ``generation`` counts trims, so a write that raced a trim is redone with what is left."""

    name: str
    batches: list[Batch]
    generation: int = 0
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = sum(len(b.records) for b in self.batches)

    @classmethod
    def form(cls, batches: list[Batch], writer: str, seq: int) -> Part:
        first = batches[0].ts
        folder = f"date={first:%Y-%m-%d}/hour={first:%H}"
        return cls(f"{folder}/{first:%Y%m%dT%H%M%S%fZ}-{writer}-{seq:08d}.parquet", batches)

    def drop_oldest(self, n: int) -> int:
        """Drop up to ``n`` of the oldest rows; return how many went."""
        dropped = 0
        while self.batches and dropped < n:
            oldest = self.batches[0]
            size = len(oldest.records)
            if size <= n - dropped:
                self.batches.pop(0)
                dropped += size
            else:
                self.batches[0] = oldest.tail(size - (n - dropped))
                dropped = n
        self.rows -= dropped
        self.generation += 1
        return dropped


def hour_of(batch: Batch) -> datetime:
    return batch.ts.replace(minute=0, second=0, microsecond=0)


def frame_of(batches: list[Batch], api_key_id: str | None = None) -> pd.DataFrame:
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
            "role": batch.role,
        }
        for batch in batches
        for record, out in zip(batch.records, batch.outputs, strict=True)
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    # An all-null column would otherwise be written as Parquet type "null" and clash with later files.
    frame["probabilities"] = frame["probabilities"].astype("string")
    # The id of the API key the service answers to (serving.lifecycle.api_key_id), never the key; null while
    # the service has no key. Not in COLUMNS: readers of logs written before it must not require it.
    frame["api_key_id"] = pd.Series([api_key_id] * len(frame), dtype="string")
    return frame


def drop_oldest(parts: deque[Part], buffer: deque[Batch], n: int) -> int:
    """Drop up to ``n`` of the oldest rows: from the parts waiting to be written first, then the buffer."""
    dropped = 0
    while dropped < n and (parts or buffer):
        excess = n - dropped
        if parts:
            dropped += parts[0].drop_oldest(excess)
            if not parts[0].rows:
                parts.popleft()
            continue
        oldest = buffer[0]
        if len(oldest.records) <= excess:
            buffer.popleft()
            dropped += len(oldest.records)
        else:
            buffer[0] = oldest.tail(len(oldest.records) - excess)
            dropped += excess
    return dropped


def write_part(
    fs: Any, base: str, name: str, batches: list[Batch], *, local: bool, api_key_id: str | None = None
) -> None:
    """Write one part as Parquet under ``base``; the same name again replaces it."""
    data = frame_of(batches, api_key_id).to_parquet(index=False)
    folder, file = f"{base}/{name}".rsplit("/", 1)
    fs.makedirs(folder, exist_ok=True)
    if local:
        # A local write is not atomic: a reader listing the folder could see half a file. Dot-files are
        # skipped by pyarrow/duckdb dataset readers, and the rename is atomic (and replaces a retried part).
        tmp = f"{folder}/.{file}.tmp"
        with fs.open(tmp, "wb") as handle:
            handle.write(data)
        fs.mv(tmp, f"{folder}/{file}")
    else:
        # Object stores publish a whole object or nothing; a second PUT of the same key replaces it.
        with fs.open(f"{folder}/{file}", "wb") as handle:
            handle.write(data)
