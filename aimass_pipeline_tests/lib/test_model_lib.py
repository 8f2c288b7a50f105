import numpy as np
import pandas as pd
import pytest

from aimass_pipeline.lib.evaluation import score_binary
from aimass_pipeline.lib.features import add_ratios
from aimass_pipeline.lib.splits import holdout_mask, split_frame


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


def test_ratios_never_produce_infinity() -> None:
    frame = pd.DataFrame(
        {"Amount": [100.0, 50.0], "Price": [0.0, 100.0], "Debt": [1.0, np.nan], "Assets": [0.0, 5.0]}
    )
    out = add_ratios(frame)
    assert np.isnan(out.loc[0, "amount_to_price"]) and out.loc[1, "amount_to_price"] == 0.5
    assert not np.isinf(out.select_dtypes("number").to_numpy()).any()


def test_scores_and_their_errors() -> None:
    y = np.array([0, 0, 1, 1, 0, 1] * 20)
    perfect = score_binary(y, y * 0.9 + 0.05)
    assert perfect["roc_auc"] == 1.0 and perfect["accuracy"] == 1.0
    assert perfect["roc_auc_ci_low"] <= perfect["roc_auc"] <= perfect["roc_auc_ci_high"]
    with pytest.raises(ValueError, match="both classes"):
        score_binary(np.zeros(10), np.full(10, 0.3))
    with pytest.raises(ValueError, match="within"):
        score_binary(y, np.full(len(y), 1.2))
