"""The prediction log read back: what a use case served in a window of time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from aimass_pipeline.core.prediction_log import COLUMNS, PREFIX


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
        empty = pd.DataFrame({name: pd.Series(dtype=object) for name in COLUMNS})
        empty["ts"] = pd.to_datetime(empty["ts"], utc=True)
        empty["probability"] = empty["probability"].astype(float)
        return empty
    frame = pd.concat(frames, ignore_index=True)
    in_span = (frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))
    return frame.loc[in_span].sort_values("ts", kind="stable").reset_index(drop=True)
