"""Drift statistics on seeded synthetic data: stable data stays quiet, a shift is found and named."""

import json

import numpy as np
import pandas as pd
import pytest

from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.monitoring.drift import (
    compare_categorical,
    feature_drift,
    numeric_counts,
    prediction_drift,
    psi_from_counts,
    served_features,
)
from aimass_pipeline.monitoring.plots import drift_png

NUMERIC = ["income", "age", "debt"]
CATEGORICAL = ["home"]
THRESHOLDS = {"psi_threshold": 0.2, "alpha": 0.01, "drifted_share": 0.3}


def _frame(
    n: int, seed: int, income_shift: float = 0.0, age_shift: float = 0.0, owners: float = 0.3
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(100 + income_shift, 20, n),
            "age": rng.integers(18, 70, n) + age_shift,
            "debt": rng.exponential(50, n),
            "home": rng.choice(
                ["rent", "owner", "parents"], n, p=[0.7 - owners / 2, owners, 0.3 - owners / 2]
            ),
        }
    )


def test_no_drift_gives_low_psi_and_no_recommendation() -> None:
    report = feature_drift(_frame(4000, 1), _frame(1000, 2), NUMERIC, CATEGORICAL, **THRESHOLDS)

    assert report.max_psi < 0.05
    assert report.drifted_features == []
    assert not report.retrain_recommended
    assert "0 of 4 features drifted" in report.reason
    assert {row.test for row in report.rows} == {"ks", "chi2"}


def test_shifted_mean_is_found_and_recommends_retraining() -> None:
    shifted = _frame(1000, 2, income_shift=30, age_shift=15)

    report = feature_drift(_frame(4000, 1), shifted, NUMERIC, CATEGORICAL, **THRESHOLDS)

    assert set(report.drifted_features) == {"income", "age"}
    by_name = {row.feature: row for row in report.rows}
    assert by_name["income"].psi > 0.5 and by_name["income"].p_value < 1e-6
    assert not by_name["debt"].drifted
    assert report.retrain_recommended, report.reason
    assert report.ranked()[0].feature in {"income", "age"}
    markdown = report.as_markdown()
    assert "retraining recommended" in markdown and "| income | numeric |" in markdown


def test_one_drifted_feature_below_the_share_does_not_recommend() -> None:
    report = feature_drift(
        _frame(4000, 1), _frame(1000, 2, income_shift=30), NUMERIC, CATEGORICAL, **THRESHOLDS
    )

    assert report.drifted_features == ["income"]
    assert report.drifted_share == pytest.approx(0.25)
    assert not report.retrain_recommended


def test_categorical_shift_and_unseen_level() -> None:
    reference = _frame(4000, 1)["home"]
    current = pd.Series(["owner"] * 600 + ["caravan"] * 400)

    row = compare_categorical("home", reference, current, psi_threshold=0.2, alpha=0.01)

    assert row.drifted and row.psi > 1 and row.p_value < 1e-10


def test_psi_bins_come_from_reference_quantiles_with_a_missing_bin() -> None:
    reference = pd.Series(np.arange(1000, dtype=float))
    current = pd.Series([np.nan] * 10 + list(range(90)), dtype=float)

    ref_counts, cur_counts = numeric_counts(reference, current)

    assert len(ref_counts) == 11 and ref_counts[:10].tolist() == [100] * 10 and ref_counts[10] == 0
    assert cur_counts[0] == 90 and cur_counts[10] == 10
    assert psi_from_counts(ref_counts, ref_counts) == 0
    assert np.isfinite(psi_from_counts(ref_counts, cur_counts)), "an empty bin is floored, not infinite"


def test_empty_current_window_is_an_error_naming_it() -> None:
    with pytest.raises(DataContractError, match=r"current window: \[empty_window\]"):
        feature_drift(_frame(100, 1), _frame(0, 2), NUMERIC, CATEGORICAL, **THRESHOLDS)


def test_unknown_column_is_an_error_naming_it() -> None:
    with pytest.raises(DataContractError, match=r"column 'salary'.*unknown_column"):
        feature_drift(_frame(100, 1), _frame(100, 2), ["salary"], [], **THRESHOLDS)


def test_prediction_drift_binary_and_multiclass() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 5, 3000)
    reference = np.column_stack([1 - p, p])
    stable = pd.DataFrame({"probability": rng.beta(2, 5, 800), "label": "good"})
    shifted = pd.DataFrame({"probability": rng.beta(5, 2, 800), "label": "bad"})

    assert not prediction_drift(reference, stable, ["good", "bad"], 0.2, 0.01).retrain_recommended
    drifted = prediction_drift(reference, shifted, ["good", "bad"], 0.2, 0.01)
    assert drifted.retrain_recommended and drifted.drifted_features == ["probability"]

    three = rng.dirichlet([5, 1, 1], 3000)
    served = pd.DataFrame({"probability": three.max(axis=1)[:800], "label": ["c"] * 800})
    multiclass = prediction_drift(three, served, ["a", "b", "c"], 0.2, 0.01)
    assert "label" in multiclass.drifted_features and multiclass.retrain_recommended

    with pytest.raises(DataContractError, match="shape"):
        prediction_drift(reference, stable, ["a", "b", "c"], 0.2, 0.01)


def test_served_features_parse_the_logged_inputs() -> None:
    log = pd.DataFrame({"inputs": [json.dumps({"income": 1.5, "home": None}), json.dumps({"income": 2})]})

    frame = served_features(log, ["income", "home", "age"])

    assert list(frame.columns) == ["income", "home", "age"]
    assert frame["income"].tolist() == [1.5, 2.0] and frame["home"].isna().all()
    with pytest.raises(DataContractError, match="salary"):
        served_features(pd.DataFrame({"inputs": [json.dumps({"salary": 1})]}), ["income"])


def test_served_features_accept_the_declared_personal_fields_and_leave_them_out() -> None:
    # A PII use case's clients may send the subject's id (logged as a pseudonym); drift must not refuse it.
    log = pd.DataFrame({"inputs": [json.dumps({"income": 1.0, "patient_id": "ps_ab12"})]})

    frame = served_features(log, ["income"], personal=["patient_id"])

    assert list(frame.columns) == ["income"]
    with pytest.raises(DataContractError, match="salary"):
        served_features(pd.DataFrame({"inputs": [json.dumps({"salary": 1})]}), ["income"], ["patient_id"])


def test_drift_png_is_a_png() -> None:
    reference, current = _frame(500, 1), _frame(200, 2, income_shift=30)
    report = feature_drift(reference, current, NUMERIC, CATEGORICAL, **THRESHOLDS)

    assert drift_png(reference, current, report).startswith(b"\x89PNG")
