"""A frozen holdout: membership is a hash of the record key, so it never moves as batches arrive.

The training rows are split once more, by a hash of the key under another salt (``core.splits``): candidates
are fitted on the fitting rows and the best one is chosen on the selection rows. The frozen holdout is kept
for the gate alone: a winner chosen on the holdout is, among candidates of equal skill, the one whose holdout
noise was luckiest, and the gate would then promote it more often than its alpha.

A scanned table (``core.scan``) is split in DuckDB by the same integer rule (``split_scan``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aimass_pipeline.core.scan import ScanTable, copy_query, duckdb_session
from aimass_pipeline.core.splits import (  # noqa: F401 - re-exported: the training stage's splits
    HOLDOUT_SALT,
    SELECTION_FRACTION,
    hash_threshold,
    holdout_mask,
    key_hash_sql,
    selection_split,
)


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
        source, threshold = table.sql(con), hash_threshold(fraction)
        side = f'select * from {source} where ({key_hash_sql(key)} < {threshold}) = {{held}} order by "{key}"'
        train = copy_query(con, side.format(held="false"), workdir / "train" / "table.parquet")
        holdout = copy_query(con, side.format(held="true"), workdir / "holdout" / "table.parquet")
    _both_sides(table.rows, train.rows, holdout.rows)
    return ScanSplit(train, holdout)
