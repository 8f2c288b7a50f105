"""The prediction log read back: what a use case served in a window of time, or the predictions a set of
labels names, whenever they were served. Both read one row per ``prediction_id``: a part written twice
(a retried flush) counts once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from aimass_pipeline.core.prediction_log import COLUMNS, PREFIX


def _empty() -> pd.DataFrame:
    empty = pd.DataFrame({name: pd.Series(dtype=object) for name in COLUMNS})
    empty["ts"] = pd.to_datetime(empty["ts"], utc=True)
    empty["probability"] = empty["probability"].astype(float)
    return empty


def _one_per_id(frame: pd.DataFrame) -> pd.DataFrame:
    # The earliest copy wins; copies of one prediction carry the same values.
    ordered = frame.sort_values("ts", kind="stable")
    return ordered.drop_duplicates("prediction_id", keep="first").reset_index(drop=True)


def read_predictions(fs: Any, root: str, use_case: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Logged predictions with ``start <= ts < end`` (UTC), reading only the hour folders in that span."""
    base = "/".join([root.rstrip("/"), PREFIX, use_case])
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    frames = []
    while hour < end:
        folder = f"{base}/date={hour:%Y-%m-%d}/hour={hour:%H}"
        if fs.exists(folder):
            # Dot-files are a local flush still being written.
            for path in sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".parquet")):
                if not path.rsplit("/", 1)[-1].startswith("."):
                    with fs.open(path, "rb") as handle:
                        frames.append(pd.read_parquet(handle))
        hour += timedelta(hours=1)
    if not frames:
        return _empty()
    frame = pd.concat(frames, ignore_index=True)
    in_span = (frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))
    return _one_per_id(frame.loc[in_span])


def predictions_by_id(fs: Any, root: str, use_case: str, ids: Iterable[str]) -> pd.DataFrame:
    """The logged predictions whose id is in ``ids``, from the whole log (a label may land months after its
    prediction): one filtered scan over every Parquet part, so memory holds the matches, not the log."""
    base = "/".join([root.rstrip("/"), PREFIX, use_case])
    wanted = pa.array(sorted({str(i) for i in ids}), type=pa.string())
    if not len(wanted) or not fs.exists(base):
        return _empty()
    # pyarrow skips dot-files (a local flush still being written) by default.
    dataset = ds.dataset(base, filesystem=fs, format="parquet")
    # Parts written before a column existed (role) lack it: read what the dataset has.
    columns = [name for name in COLUMNS if name in dataset.schema.names]
    table = dataset.to_table(columns=columns, filter=ds.field("prediction_id").isin(wanted))
    if not table.num_rows:
        return _empty()
    return _one_per_id(table.to_pandas())
