"""The prediction log and its shadow log read back for a rollout, and the probability shift between two arms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from aimass_pipeline.core.prediction_log import COLUMNS, PREFIX

SHADOW_PREFIX = "predictions_shadow"  # serving.rollout writes there
PSI_BINS = 10
EPSILON = 1e-4


def read_log(fs: Any, root: str, use_case: str, since: datetime | str, prefix: str = PREFIX) -> pd.DataFrame:
    """Every logged row with ``ts >= since``, one per (prediction_id, role); the earliest copy wins (a retried
    flush writes a part twice). Parts written before the ``role`` column existed read as ``served``."""
    base = "/".join([root.rstrip("/"), prefix, use_case])
    empty = pd.DataFrame({name: pd.Series(dtype=object) for name in COLUMNS})
    if not fs.exists(base):
        return empty
    dataset = ds.dataset(base, filesystem=fs, format="parquet", partitioning=None)
    columns = [name for name in COLUMNS if name in dataset.schema.names]
    frame = dataset.to_table(
        columns=columns, filter=ds.field("ts") >= pd.Timestamp(since).to_pydatetime()
    ).to_pandas()
    if "role" not in frame:
        frame["role"] = "served"
    frame["role"] = frame["role"].fillna("served")
    frame = frame.sort_values("ts", kind="stable").drop_duplicates(["prediction_id", "role"], keep="first")
    return frame.reset_index(drop=True)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` over ``reference``'s quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(
        reference
    )
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    ref, cur = np.clip(ref, EPSILON, None), np.clip(cur, EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def read_outcomes(folder: Any, target: str, classes: list[str]) -> pd.DataFrame:
    """The labels zone's ``prediction_id, <target>`` rows (CSV or Parquet), labels in their declared spelling;
    a label outside the classes is an error naming its file."""
    from aimass_pipeline.core.locations import locate
    from aimass_pipeline.core.rules import Vocabulary

    where, vocabulary = locate(folder), Vocabulary(tuple(classes))
    frames = []
    for entry in sorted(where.entries(), key=lambda e: e["name"]):
        name = entry["name"]
        if entry["type"] != "file" or name.startswith(".") or not name.endswith((".csv", ".parquet")):
            continue
        with where.child(name).open() as handle:
            frame = pd.read_csv(handle, dtype=str) if name.endswith(".csv") else pd.read_parquet(handle)
        if not {"prediction_id", target} <= set(frame.columns):
            raise ValueError(
                f"{where.child(name)}: a labels file needs the columns 'prediction_id' and {target!r}"
            )
        canonical = frame[target].astype(str).map(vocabulary.canonical)
        if canonical.isna().any():
            raise ValueError(f"{where.child(name)}: labels must be one of {classes}")
        frames.append(pd.DataFrame({"prediction_id": frame["prediction_id"].astype(str), target: canonical}))
    if not frames:
        return pd.DataFrame({"prediction_id": pd.Series(dtype=str), target: pd.Series(dtype=str)})
    return pd.concat(frames, ignore_index=True).drop_duplicates("prediction_id")
