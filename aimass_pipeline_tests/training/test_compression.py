"""Compression on small real pipelines: ONNX heads for sklearn/XGBoost, int8 dynamic quantization for torch."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from torch import nn
from xgboost import XGBClassifier

from aimass_pipeline.training.compression import (
    MIN_SIZE_GAIN,
    SLOWER_LIMIT,
    OnnxHeadClassifier,
    compress,
)

NUMERIC = ["income", "debt", "age", "debt_to_income"]


def add_ratio(frame: pd.DataFrame) -> pd.DataFrame:
    """A custom Python step, like training's add_ratios: it has no ONNX converter, so it must stay Python."""
    return frame.assign(debt_to_income=frame["debt"] / frame["income"].replace(0, np.nan))


class TinyTorchClassifier(ClassifierMixin, BaseEstimator):
    """The least sklearn-style wrapper around an MLP: the nn.Module lives in ``module_``."""

    def __init__(self, hidden: int = 32, epochs: int = 150, seed: int = 0) -> None:
        self.hidden, self.epochs, self.seed = hidden, epochs, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> TinyTorchClassifier:
        torch.manual_seed(self.seed)
        features = torch.as_tensor(np.asarray(X, dtype=np.float32))
        self.classes_ = np.unique(y)
        self.module_ = nn.Sequential(
            nn.Linear(features.shape[1], self.hidden), nn.ReLU(), nn.Linear(self.hidden, len(self.classes_))
        )
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=0.02)
        target = torch.as_tensor(np.searchsorted(self.classes_, y))
        for _ in range(self.epochs):
            optimizer.zero_grad()
            nn.functional.cross_entropy(self.module_(features), target).backward()
            optimizer.step()
        self.module_.eval()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.module_(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On a busy 2-core box torch's OpenMP workers spin against each other: a tiny MLP trains ~100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(7, 0.5, n),
            "debt": rng.lognormal(6, 1.0, n),
            "age": rng.integers(18, 80, n).astype(float),
            "home": rng.choice(["rent", "owner", "parents", None], n),
        }
    )
    logit = np.log(frame["debt"] / frame["income"]) + 1.0 * (frame["home"] == "rent") + rng.normal(0, 0.7, n)
    frame.loc[rng.random(n) < 0.1, "income"] = np.nan
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    return frame, (logit > np.median(logit)).to_numpy().astype(int)


def _encode(impute_numeric: bool) -> ColumnTransformer:
    numeric = (
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler()) if impute_numeric else "passthrough"
    )
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, ["home"])])


def _pipeline(model: object, impute_numeric: bool = True) -> Pipeline:
    ratio = FunctionTransformer(add_ratio)
    return Pipeline([("ratio", ratio), ("encode", _encode(impute_numeric)), ("model", model)])


HEADS = {
    "logreg": lambda: _pipeline(LogisticRegression(max_iter=1000)),
    "random_forest": lambda: _pipeline(RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1)),
    # XGBoost sees the NaNs: the ONNX tree ensemble must send missing values the same way.
    "xgboost": lambda: _pipeline(XGBClassifier(n_estimators=60, max_depth=3, n_jobs=1), impute_numeric=False),
}


@pytest.mark.parametrize("family", sorted(HEADS))
def test_onnx_head_agrees_with_the_pipeline(family: str, data) -> None:
    X, y = data
    pipeline = HEADS[family]().fit(X, y)
    result = compress(pipeline, X, y, metric="roc_auc", tolerance=0.001)
    assert result.method == "onnx" and isinstance(result.compressed, OnnxHeadClassifier), result.reason
    assert result.max_abs_proba_diff < 1e-4
    assert abs(result.metric_before - result.metric_after) <= 0.001
    assert result.size_before > 0 and result.size_after > 0 and result.rows == len(y)
    assert all(
        v > 0
        for v in (
            result.latency_ms_per_row_single_before,
            result.latency_ms_per_row_single_after,
            result.latency_ms_per_row_batch_before,
            result.latency_ms_per_row_batch_after,
        )
    )
    np.testing.assert_array_equal(result.compressed.classes_, pipeline.classes_)
    r = result
    not_slower = r.latency_ms_per_row_single_after <= r.latency_ms_per_row_single_before * (1 + SLOWER_LIMIT)
    gains = r.size_after <= r.size_before * MIN_SIZE_GAIN
    assert result.kept == (not_slower and gains), result.reason
    metrics = result.as_metrics()
    assert all(k.startswith("compression.") and isinstance(v, float) for k, v in metrics.items())
    assert metrics["compression.size_ratio"] == pytest.approx(result.size_after / result.size_before)


def test_onnx_head_survives_pickling_and_clone(data) -> None:
    X, y = data
    pipeline = HEADS["xgboost"]().fit(X, y)
    onnx_head = compress(pipeline, X, y, metric="accuracy", tolerance=0.0).compressed
    expected = onnx_head.predict_proba(X)
    restored = pickle.loads(pickle.dumps(onnx_head))
    assert getattr(restored, "_onnx_session", None) is None  # the session is rebuilt, not pickled
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    np.testing.assert_array_equal(restored.predict(X), pipeline.predict(X))
    assert clone(onnx_head) is onnx_head  # a clone of a frozen artifact must stay fitted


def test_xgboost_head_after_pandas_output_preprocessing(data) -> None:
    """With pandas output the booster learns real feature names, which onnxmltools cannot read."""
    X, y = data
    pipeline = HEADS["xgboost"]()
    pipeline[:-1].set_output(transform="pandas")
    pipeline.fit(X, y)
    assert pipeline[-1].get_booster().feature_names[0] == "num__income"
    result = compress(pipeline, X, y, metric="roc_auc", tolerance=0.001)
    assert result.method == "onnx" and result.max_abs_proba_diff < 1e-4
    assert pipeline[-1].get_booster().feature_names[0] == "num__income"  # the original keeps its names


def test_multiclass_xgboost_head(data) -> None:
    X, _ = data
    y = pd.qcut(X["debt"], 3, labels=False).to_numpy()
    pipeline = HEADS["xgboost"]().fit(X, y)
    result = compress(pipeline, X, y, metric="roc_auc", tolerance=0.001)
    assert result.method == "onnx" and result.max_abs_proba_diff < 1e-4
    assert result.compressed.predict_proba(X).shape == (len(y), 3)


def _torch_pipeline(X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    return Pipeline(
        [
            ("ratio", FunctionTransformer(add_ratio)),
            ("encode", _encode(True)),
            ("model", TinyTorchClassifier()),
        ]
    ).fit(X, y)


def test_int8_quantization_of_a_torch_step_keeps_the_metric(data) -> None:
    X, y = data
    pipeline = _torch_pipeline(X, y)
    before = pipeline.predict_proba(X)
    result = compress(pipeline, X, y, metric="roc_auc", tolerance=0.02)
    assert result.method == "int8-dynamic", result.reason
    assert result.metric_before - result.metric_after <= 0.02
    layer = result.compressed[-1].module_[0]
    assert (
        isinstance(layer, torch.ao.nn.quantized.dynamic.Linear) and type(pipeline[-1].module_[0]) is nn.Linear
    )
    np.testing.assert_array_equal(pipeline.predict_proba(X), before)  # the original is untouched
    assert result.size_after < result.size_before


def test_bare_torch_estimator_is_detected_through_module_attribute(data) -> None:
    X, y = data
    features = pd.DataFrame(_encode(True).fit_transform(add_ratio(X)))
    model = TinyTorchClassifier(epochs=50).fit(features.to_numpy(), y)
    assert compress(model, features, y, metric="accuracy", tolerance=0.05).method == "int8-dynamic"


def test_degraded_quantization_is_not_kept_at_zero_tolerance(data) -> None:
    """A huge first-layer weight on a muted hidden unit leaves fp32 predictions unchanged, but the
    per-tensor int8 scale then rounds every other weight of that layer to zero."""
    X, y = data
    pipeline = _torch_pipeline(X, y)
    first, last = pipeline[-1].module_[0], pipeline[-1].module_[2]
    with torch.no_grad():
        last.weight[:, 0] = 0.0  # hidden unit 0 no longer reaches the output...
        before = pipeline.predict_proba(X)
        first.weight[0, 0] = 1e4 * first.weight.abs().max()  # ...so its giant weight changes nothing in fp32
    np.testing.assert_allclose(pipeline.predict_proba(X), before, atol=1e-6)
    result = compress(pipeline, X, y, metric="roc_auc", tolerance=0.0)
    assert result.method == "int8-dynamic" and not result.kept
    assert result.metric_before - result.metric_after > 0.05 and "drops" in result.reason


@pytest.mark.parametrize(
    ("estimator", "reason"),
    [
        (_pipeline(KNeighborsClassifier()), "KNeighborsClassifier"),
        (LogisticRegression(max_iter=1000), "neither torch-based nor a scikit-learn Pipeline"),
    ],
)
def test_unsupported_estimators_are_reported_not_raised(estimator, reason: str, data) -> None:
    X, y = data
    if isinstance(estimator, Pipeline):
        estimator.fit(X, y)
    result = compress(estimator, X, y, metric="roc_auc", tolerance=0.01)
    assert result.method == "none" and not result.kept and result.compressed is None
    assert reason in result.reason and result.as_metrics() == {
        "compression.kept": 0.0,
        "compression.rows": 300.0,
    }


def test_rejects_mismatched_sample(data) -> None:
    X, y = data
    with pytest.raises(ValueError, match="must match"):
        compress(HEADS["logreg"]().fit(X, y), X, y[:10], metric="roc_auc", tolerance=0.01)
