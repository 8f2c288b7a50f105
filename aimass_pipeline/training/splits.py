"""A frozen holdout: membership is a hash of the record key, so it never moves as batches arrive.

One rule, two engines: a key goes to the holdout when the first 8 bytes of sha256("<salt>:<key>"), read as
an unsigned big-endian integer, are below ``holdout_threshold(fraction)``. pandas applies it to a frame,
DuckDB (``split_scan``) to a scanned table; ``test_sql_split_gives_exactly_the_python_split`` holds them equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aimass_pipeline.core.scan import ScanTable, copy_query, duckdb_session

HOLDOUT_SALT = "aimass-holdout-v1"
_SPACE = 2**64


def _check(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")


def holdout_threshold(fraction: float) -> int:
    """The least 64-bit hash value whose bucket (value / 2**64, as the first splits computed it) is not
    below ``fraction``: the same rows as the float comparison, as an exact integer both engines share."""
    _check(fraction)
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
    threshold = holdout_threshold(fraction)
    return keys.map(lambda key: key_hash(key, salt) < threshold).astype(bool)


def _both_sides(rows: int, train: int, holdout: int) -> None:
    if train == 0 or holdout == 0:
        raise ValueError(f"split of {rows} rows left an empty side (train {train}, holdout {holdout})")


def split_frame(frame: pd.DataFrame, key: str, fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, holdout) by key hash; both sorted by key so row order never depends on load order."""
    mask = holdout_mask(frame[key].astype(str), fraction)
    train = frame.loc[~mask].sort_values(key, kind="stable").reset_index(drop=True)
    holdout = frame.loc[mask].sort_values(key, kind="stable").reset_index(drop=True)
    _both_sides(len(frame), len(train), len(holdout))
    return train, holdout


@dataclass(frozen=True)
class ScanSplit:
    train: ScanTable
    holdout: ScanTable


def split_scan(table: ScanTable, key: str, workdir: Path, fraction: float = 0.2) -> ScanSplit:
    """``split_frame`` in DuckDB over a scanned table: each side one Parquet file sorted by key."""
    with duckdb_session(workdir) as con:
        source, threshold = table.sql(con), holdout_threshold(fraction)
        side = f'select * from {source} where ({key_hash_sql(key)} < {threshold}) = {{held}} order by "{key}"'
        train = copy_query(con, side.format(held="false"), workdir / "train" / "table.parquet")
        holdout = copy_query(con, side.format(held="true"), workdir / "holdout" / "table.parquet")
    _both_sides(table.rows, train.rows, holdout.rows)
    return ScanSplit(train, holdout)
