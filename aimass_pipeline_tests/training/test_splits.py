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
