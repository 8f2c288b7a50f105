"""Key-hash splits shared by training (which fits on the fitting rows) and evaluation (which chooses among the
candidates on the selection rows): membership is a hash of the record key, so a row never changes sides as
batches arrive, and the two stages compute the same rows on their own."""

from __future__ import annotations

import hashlib

import pandas as pd

HOLDOUT_SALT = "aimass-holdout-v1"
SELECTION_SALT = "aimass-selection-v1"
# Share of the training rows the candidates are not fitted on, and chosen among on.
SELECTION_FRACTION = 0.2


def holdout_mask(keys: pd.Series, fraction: float = 0.2, salt: str = HOLDOUT_SALT) -> pd.Series:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")

    def bucket(key: object) -> float:
        digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return keys.map(bucket) < fraction


def selection_split(
    training: pd.DataFrame, key: str, fraction: float = SELECTION_FRACTION
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fitting rows, selection rows) of the training set, by a key hash independent of the holdout's; the
    training asset fits on the first and the evaluation chooses on the second, each calling this."""
    mask = holdout_mask(training[key].astype(str), fraction, salt=SELECTION_SALT)
    fitting = training.loc[~mask].reset_index(drop=True)
    selection = training.loc[mask].reset_index(drop=True)
    if fitting.empty or selection.empty:
        raise ValueError(
            f"selection split of {len(training)} training rows left an empty side "
            f"(fitting {len(fitting)}, selection {len(selection)})"
        )
    return fitting, selection
