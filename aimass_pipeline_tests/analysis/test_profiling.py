import numpy as np
import pandas as pd
import pytest

from aimass_pipeline.analysis.profile_changes import PSI_SHIFT, compare_profiles
from aimass_pipeline.analysis.profiling import correlation_png, profile_table, typed_batch
from aimass_pipeline.preprocessing.cleaning import clean_records
from aimass_pipeline.transformation.features import model_table
from aimass_pipeline_tests.conftest import CREDIT_RISK
from aimass_pipeline_tests.raw_batches import read_raw_batch

PNG_MAGIC = b"\x89PNG"


def _raw(frame: pd.DataFrame, batch: str) -> pd.DataFrame:
    return read_raw_batch(frame.to_csv(index=False).encode(), f"{batch}.csv", batch, CREDIT_RISK)


def _batch_profile(frame: pd.DataFrame, batch: str, reference: dict | None = None) -> dict:
    typed, _ = typed_batch(_raw(frame, batch), CREDIT_RISK, "label")
    return profile_table(typed, CREDIT_RISK, "label", name=batch, reference=reference)


def test_typed_batch_counts_values_it_cannot_type_instead_of_dropping_rows(
    credit_frame: pd.DataFrame,
) -> None:
    frame = credit_frame.head(50).astype(str).replace("nan", "")
    frame.loc[0, "Amount"] = "lots"
    frame.loc[1, "Home"] = "castle"
    frame.loc[2, "Status"] = "unknown"
    typed, invalid = typed_batch(_raw(frame, "b1"), CREDIT_RISK, "label")
    assert len(typed) == 50
    assert invalid == {"Amount": 1, "Home": 1, "Status": 1}
    assert np.isnan(typed.loc[0, "Amount"]) and typed.loc[1, "Home"] == "castle"
    profile = profile_table(typed, CREDIT_RISK, "label")
    assert profile["unlabelled_rows"] == 1
    assert sum(profile["class_counts"].values()) == 49


def test_profile_matches_the_cleaned_table(credit_frame: pd.DataFrame) -> None:
    clean, _ = clean_records(_raw(credit_frame.head(400), "b1"), CREDIT_RISK)
    table = model_table(clean, CREDIT_RISK)
    profile = profile_table(table, CREDIT_RISK, "label")
    assert profile["rows"] == 400
    assert profile["missing_by_column"]["Income"] == int(credit_frame.head(400)["Income"].isna().sum())
    bad_share = float((credit_frame.head(400)["Status"] == "bad").mean())
    assert profile["class_balance"]["bad"] == pytest.approx(bad_share, abs=1e-4)
    pairs = {(p["a"], p["b"]) for p in profile["top_correlated_pairs"]}
    assert ("Amount", "Price") in pairs or ("Price", "Amount") in pairs
    assert correlation_png(table, CREDIT_RISK).startswith(PNG_MAGIC)


def test_compare_profiles_finds_no_change_between_halves_of_one_shuffle(credit_frame: pd.DataFrame) -> None:
    shuffled = credit_frame.sample(frac=1.0, random_state=0)
    first = _batch_profile(shuffled.iloc[:2000], "b1")
    second = _batch_profile(shuffled.iloc[2000:4000], "b2", reference=first)
    change = compare_profiles(first, second)
    assert change["previous"] == "b1" and change["row_delta"] == 0
    assert change["shifted_features"] == []
    assert change["max_psi"] < 0.05
    assert change["label_psi"] < 0.01


def test_compare_profiles_names_the_shifted_features(credit_frame: pd.DataFrame) -> None:
    first = credit_frame.iloc[:1500]
    second = credit_frame.iloc[1500:3000].copy()
    second["Amount"] = second["Amount"] * 3
    second["Home"] = "rent"
    second.loc[second.index[:300], "Income"] = np.nan
    previous = _batch_profile(first, "b1")
    change = compare_profiles(previous, _batch_profile(second, "b2", reference=previous))
    assert set(change["shifted_features"]) >= {"Amount", "Home"}
    assert change["features"]["Amount"]["psi"] > PSI_SHIFT
    assert change["features"]["Amount"]["mean_delta"] > 1000
    assert change["features"]["Home"]["share_delta"]["rent"] > 0.4
    assert change["features"]["Income"]["missing_rate_delta"] > 0.15
    assert change["features"]["Age"]["psi"] < 0.1


def test_psi_is_exact_on_discrete_values_tied_on_the_cut_points() -> None:
    from aimass_pipeline.analysis.profile_changes import numeric_psi, numeric_sketch

    rng = np.random.default_rng(0)
    grey = pd.Series(rng.choice([0, 0, 0, 4, 8, 16], size=3000).astype(float))
    previous = numeric_sketch(grey.iloc[:1500])
    assert numeric_psi(previous, numeric_sketch(grey.iloc[1500:], previous)) < 0.01
    brighter = pd.Series(rng.choice([0, 8, 16, 16], size=1500).astype(float))
    assert numeric_psi(previous, numeric_sketch(brighter, previous)) > PSI_SHIFT


def test_compare_refuses_profiles_binned_apart(credit_frame: pd.DataFrame) -> None:
    first = _batch_profile(credit_frame.iloc[:500], "b1")
    unrelated = _batch_profile(credit_frame.iloc[500:1000], "b2")
    with pytest.raises(ValueError, match="reference=previous"):
        compare_profiles(first, _batch_profile(credit_frame.iloc[1000:1500], "b3", reference=unrelated))
