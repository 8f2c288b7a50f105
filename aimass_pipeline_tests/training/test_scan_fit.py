"""XGBoost from a QuantileDMatrix iterator scores as the in-memory fit does."""

from pathlib import Path

import numpy as np

from aimass_pipeline.collection.synthetic import credit_part
from aimass_pipeline.core.scan import ScanTable
from aimass_pipeline.models import get_family
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.training.scan_fit import fit_xgboost_scan
from aimass_pipeline_tests.conftest import CREDIT_RISK, CREDIT_SPEC


def _table(rows: int) -> "tuple":
    frame = credit_part(np.random.default_rng(4), 1, rows).to_pandas()
    frame["label"] = (frame["Status"] == "bad").astype(np.int64)
    for column in CREDIT_RISK.numeric_features:
        frame[column] = frame[column].astype("float64")
    return frame[[CREDIT_RISK.key, *CREDIT_RISK.feature_names, "label"]]


def test_iterator_fit_matches_the_frame_fit_on_one_batch(tmp_path: Path) -> None:
    frame = _table(5000)
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    layout, features = UseCase(CREDIT_SPEC).layout, CREDIT_RISK.feature_names
    family = get_family("xgboost")
    params = {"n_estimators": 30}
    expected = family.build(layout, 2, params, 7).fit(frame[features], frame["label"])
    fitted, rows = fit_xgboost_scan(
        family.build(layout, 2, params, 7),
        ScanTable.of_files([str(tmp_path / "train.parquet")]),
        frame.sample(1000, random_state=1),
        features,
        "label",
        2,
        key=CREDIT_RISK.key,
    )
    got = fitted.predict_proba(frame[features])
    np.testing.assert_allclose(got, expected.predict_proba(frame[features]), atol=1e-5)
    assert got.shape == (5000, 2) and rows == 5000


def test_iterator_fit_leaves_out_the_rows_keep_drops(tmp_path: Path) -> None:
    frame = _table(3000)
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    layout, features = UseCase(CREDIT_SPEC).layout, CREDIT_RISK.feature_names
    family = get_family("xgboost")
    kept = frame[frame["Age"] < 40]
    expected = family.build(layout, 2, {"n_estimators": 20}, 7).fit(kept[features], kept["label"])
    fitted, rows = fit_xgboost_scan(
        family.build(layout, 2, {"n_estimators": 20}, 7),
        ScanTable.of_files([str(tmp_path / "train.parquet")]),
        kept,
        features,
        "label",
        2,
        key=CREDIT_RISK.key,
        keep=lambda batch: (batch["Age"] < 40).to_numpy(),
    )
    assert rows == len(kept)
    np.testing.assert_allclose(
        fitted.predict_proba(frame[features]), expected.predict_proba(frame[features]), atol=1e-5
    )
