import numpy as np
import pandas as pd
import pytest

from aimass_pipeline.lib.contracts import CREDIT_RISK
from aimass_pipeline.lib.evaluation import score_binary
from aimass_pipeline.lib.features import add_ratios
from aimass_pipeline.lib.gate import decide
from aimass_pipeline.lib.preprocessing import clean_applications, read_raw_batch
from aimass_pipeline.lib.splits import holdout_mask, split_frame
from aimass_pipeline.lib.training import build_pipeline, features_and_target, fit_candidate, predict_positive


@pytest.fixture(scope="module")
def model_frame(credit_frame: pd.DataFrame) -> pd.DataFrame:
    raw = read_raw_batch(credit_frame.head(600).to_csv(index=False).encode(), "f.csv", "b1", CREDIT_RISK)
    clean, _ = clean_applications(raw, CREDIT_RISK)
    return clean.assign(is_bad=(clean["Status"] == "bad").astype(int))


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


@pytest.mark.parametrize("family", ["logreg", "xgboost"])
def test_each_family_fits_and_predicts_probabilities(model_frame: pd.DataFrame, family: str) -> None:
    fitted = fit_candidate(
        family,
        model_frame,
        CREDIT_RISK,
        "is_bad",
        params={"max_iter": 500} if family == "logreg" else {"n_estimators": 50},
        cv_folds=3,
    )
    features, target = features_and_target(model_frame, CREDIT_RISK, "is_bad")
    proba = predict_positive(fitted.pipeline, features)
    assert proba.shape == (len(model_frame),) and ((proba >= 0) & (proba <= 1)).all()
    assert 0.6 < fitted.cv_roc_auc_mean <= 1.0
    again = fit_candidate(
        family,
        model_frame,
        CREDIT_RISK,
        "is_bad",
        params={"max_iter": 500} if family == "logreg" else {"n_estimators": 50},
        cv_folds=3,
    )
    np.testing.assert_array_equal(proba, predict_positive(again.pipeline, features))


def test_unknown_family_and_one_class_target_are_refused(model_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown model family 'svm'"):
        build_pipeline("svm", CREDIT_RISK)
    with pytest.raises(ValueError, match="both classes"):
        features_and_target(model_frame.assign(is_bad=0), CREDIT_RISK, "is_bad")


def test_scores_and_their_errors() -> None:
    y = np.array([0, 0, 1, 1, 0, 1] * 20)
    perfect = score_binary(y, y * 0.9 + 0.05)
    assert perfect["roc_auc"] == 1.0 and perfect["accuracy"] == 1.0
    assert perfect["roc_auc_ci_low"] <= perfect["roc_auc"] <= perfect["roc_auc_ci_high"]
    with pytest.raises(ValueError, match="both classes"):
        score_binary(np.zeros(10), np.full(10, 0.3))
    with pytest.raises(ValueError, match="within"):
        score_binary(y, np.full(len(y), 1.2))


@pytest.mark.parametrize(
    ("challenger", "champion", "promote", "reason"),
    [
        (0.70, None, False, "below the floor"),
        (0.80, None, True, "first model"),
        (0.86, 0.85, True, "beats"),
        (0.85, 0.85, False, "does not beat"),
        (0.84, 0.85, False, "does not beat"),
    ],
)
def test_gate(challenger: float, champion: float | None, promote: bool, reason: str) -> None:
    decision = decide(challenger, champion, floor=0.75)
    assert decision.promote is promote and reason in decision.reason


def test_gate_min_delta_holds_back_a_marginal_gain() -> None:
    assert not decide(0.855, 0.85, min_delta=0.01).promote
    assert decide(0.861, 0.85, min_delta=0.01).promote
