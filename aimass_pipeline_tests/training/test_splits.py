import pandas as pd
import pytest

from aimass_pipeline.training.splits import holdout_mask, split_frame


def test_holdout_is_frozen_and_independent_of_order() -> None:
    keys = pd.Series([str(i) for i in range(5000)])
    mask = holdout_mask(keys)
    assert 0.18 < mask.mean() < 0.22
    shuffled = keys.sample(frac=1.0, random_state=3)
    assert holdout_mask(shuffled).reindex(keys.index).equals(mask)
    grown = pd.concat([keys, pd.Series([str(i) for i in range(5000, 6000)])], ignore_index=True)
    assert holdout_mask(grown).iloc[:5000].equals(mask)


def test_split_rejects_bad_fraction_and_tiny_frames() -> None:
    with pytest.raises(ValueError, match="fraction"):
        holdout_mask(pd.Series(["1"]), fraction=1.5)
    with pytest.raises(ValueError, match="empty side"):
        split_frame(pd.DataFrame({"k": ["1"]}), "k")


@pytest.mark.parametrize("fraction", [0.2, 0.1, 0.37])
def test_sql_split_gives_exactly_the_python_split(tmp_path, fraction: float) -> None:
    """One rule: the DuckDB split of a scanned table holds the same rows, in the same order, as split_frame."""
    import numpy as np

    from aimass_pipeline.core.scan import ScanTable
    from aimass_pipeline.training.splits import split_scan

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "k": [f"a{i}" for i in rng.permutation(3000)] + ["7", "70", "x y", "é"],
            "v": rng.random(3004),
        }
    )
    path = tmp_path / "table.parquet"
    frame.to_parquet(path, index=False)
    train, holdout = split_frame(frame, "k", fraction=fraction)
    scanned = split_scan(ScanTable((str(path),), len(frame)), "k", tmp_path / "out", fraction=fraction)
    assert scanned.train.to_pandas().equals(train)
    assert scanned.holdout.to_pandas().equals(holdout)
    assert (scanned.train.rows, scanned.holdout.rows) == (len(train), len(holdout))
