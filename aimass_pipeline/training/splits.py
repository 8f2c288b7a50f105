"""A frozen holdout: membership is a hash of the record key, so it never moves as batches arrive."""

from __future__ import annotations

import hashlib

import pandas as pd

HOLDOUT_SALT = "aimass-holdout-v1"


def holdout_mask(keys: pd.Series, fraction: float = 0.2, salt: str = HOLDOUT_SALT) -> pd.Series:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")

    def bucket(key: object) -> float:
        digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return keys.map(bucket) < fraction


def split_frame(frame: pd.DataFrame, key: str, fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, holdout) by key hash; both sorted by key so row order never depends on load order."""
    mask = holdout_mask(frame[key].astype(str), fraction)
    train = frame.loc[~mask].sort_values(key, kind="stable").reset_index(drop=True)
    holdout = frame.loc[mask].sort_values(key, kind="stable").reset_index(drop=True)
    if train.empty or holdout.empty:
        raise ValueError(
            f"split of {len(frame)} rows left an empty side (train {len(train)}, holdout {len(holdout)})"
        )
    return train, holdout
