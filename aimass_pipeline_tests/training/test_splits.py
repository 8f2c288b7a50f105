import pandas as pd
import pytest

from aimass_pipeline.training.splits import SELECTION_FRACTION, holdout_mask, selection_split, split_frame


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


def test_selection_rows_are_frozen_disjoint_and_independent_of_the_holdout() -> None:
    frame = pd.DataFrame({"k": [str(i) for i in range(4000)], "v": range(4000)})
    training, holdout = split_frame(frame, "k")
    fitting, selection = selection_split(training, "k")
    assert len(fitting) + len(selection) == len(training)
    assert not set(selection["k"]) & set(fitting["k"]) and not set(selection["k"]) & set(holdout["k"])
    assert 0.17 < len(selection) / len(training) < 0.23
    # Another salt: the selection share among keys is the same inside and outside the holdout.
    on_holdout = holdout_mask(holdout["k"], SELECTION_FRACTION, salt="aimass-selection-v1").mean()
    assert 0.15 < on_holdout < 0.25
    grown = selection_split(pd.concat([training, training.assign(k=training["k"] + "x")]), "k")[1]
    assert set(selection["k"]) <= set(grown["k"])
