"""A frozen holdout: membership is a hash of the record key, so it never moves as batches arrive.

The training rows are split once more, by a hash of the key under another salt (``core.splits``): candidates
are fitted on the fitting rows and the best one is chosen on the selection rows. The frozen holdout is kept
for the gate alone: a winner chosen on the holdout is, among candidates of equal skill, the one whose holdout
noise was luckiest, and the gate would then promote it more often than its alpha."""

from __future__ import annotations

import pandas as pd

from aimass_pipeline.core.splits import (  # noqa: F401 - re-exported: the training stage's splits
    HOLDOUT_SALT,
    SELECTION_FRACTION,
    holdout_mask,
    selection_split,
)


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
