"""Key-hash splits shared by training (which fits on the fitting rows) and evaluation (which chooses among the
candidates on the selection rows): membership is a hash of the record key, so a row never changes sides as
batches arrive, and the two stages compute the same rows on their own.

One rule, two engines: a key is in when the first 8 bytes of sha256("<salt>:<key>"), read as an unsigned
big-endian integer, are below ``hash_threshold(fraction)``. pandas applies it to a frame, DuckDB
(``key_hash_sql``) to a scanned table; ``test_sql_split_gives_exactly_the_python_split`` holds them equal."""

from __future__ import annotations

import hashlib

import pandas as pd

HOLDOUT_SALT = "aimass-holdout-v1"
SELECTION_SALT = "aimass-selection-v1"
# Share of the training rows the candidates are not fitted on, and chosen among on.
SELECTION_FRACTION = 0.2
_SPACE = 2**64


def hash_threshold(fraction: float) -> int:
    """The least 64-bit hash value whose bucket (value / 2**64, as the first splits computed it) is not
    below ``fraction``: the same rows as the float comparison, as an exact integer both engines share."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    low, high = 0, _SPACE
    while low < high:
        middle = (low + high) // 2
        if middle / _SPACE < fraction:
            low = middle + 1
        else:
            high = middle
    return low


def key_hash(key: object, salt: str = HOLDOUT_SALT) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big")


def key_hash_sql(column: str, salt: str = HOLDOUT_SALT) -> str:
    """``key_hash`` in DuckDB SQL over ``column`` (cast to text as pandas' ``astype(str)`` does)."""
    return f"('0x' || left(sha256('{salt}:' || cast(\"{column}\" as varchar)), 16))::ubigint"


def holdout_mask(keys: pd.Series, fraction: float = 0.2, salt: str = HOLDOUT_SALT) -> pd.Series:
    threshold = hash_threshold(fraction)
    return keys.map(lambda key: key_hash(key, salt) < threshold).astype(bool)


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
