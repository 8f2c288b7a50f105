"""Candidate model families behind one interface: a scikit-learn Pipeline from raw features to P(positive)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from aimass_pipeline.lib.contracts import Contract
from aimass_pipeline.lib.features import add_ratios, ratio_names

FAMILIES = ("logreg", "xgboost")

DEFAULT_PARAMS: dict[str, dict] = {
    "logreg": {"C": 0.5, "max_iter": 2000},
    "xgboost": {
        "n_estimators": 400,
        "learning_rate": 0.03,
        "max_depth": 4,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 2,
        "reg_lambda": 1.0,
    },
}


@dataclass
class FittedCandidate:
    family: str
    params: dict
    pipeline: Pipeline
    cv_roc_auc_mean: float
    cv_roc_auc_std: float
    train_rows: int


def features_and_target(
    frame: pd.DataFrame, contract: Contract, target_col: str
) -> tuple[pd.DataFrame, np.ndarray]:
    missing = [c for c in [*contract.feature_names, target_col] if c not in frame.columns]
    if missing:
        raise KeyError(f"training frame lacks columns {missing}")
    features = frame[contract.feature_names].copy()
    for name in contract.numeric_features:
        features[name] = features[name].astype("float64")
    for name in contract.categorical_features:
        features[name] = features[name].astype(object).where(features[name].notna(), None)
    target = frame[target_col].astype(int).to_numpy()
    if set(np.unique(target)) != {0, 1}:
        raise ValueError(f"target {target_col!r} must hold both classes 0 and 1, got {sorted(set(target))}")
    return features, target


def build_pipeline(family: str, contract: Contract, params: dict | None = None, seed: int = 42) -> Pipeline:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {FAMILIES}")
    merged = {**DEFAULT_PARAMS[family], **(params or {})}
    numeric = [*contract.numeric_features, *ratio_names(contract.numeric_features)]
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    if family == "logreg":
        numeric_steps = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True),
            FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
            StandardScaler(),
        )
        model = LogisticRegression(random_state=seed, **merged)
    else:
        # XGBoost learns its own direction for missing values; imputing would hide that signal.
        numeric_steps = "passthrough"
        model = XGBClassifier(random_state=seed, n_jobs=1, tree_method="hist", eval_metric="auc", **merged)
    encode = ColumnTransformer(
        [("num", numeric_steps, numeric), ("cat", categorical, contract.categorical_features)],
        verbose_feature_names_out=False,
    )
    ratios = FunctionTransformer(add_ratios, feature_names_out=None)
    return Pipeline([("ratios", ratios), ("encode", encode), ("model", model)])


def fit_candidate(
    family: str,
    frame: pd.DataFrame,
    contract: Contract,
    target_col: str,
    params: dict | None = None,
    seed: int = 42,
    cv_folds: int = 5,
) -> FittedCandidate:
    """Cross-validate on the training set, then refit on all of it."""
    features, target = features_and_target(frame, contract, target_col)
    pipeline = build_pipeline(family, contract, params, seed)
    folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(pipeline, features, target, cv=folds, scoring="roc_auc", n_jobs=1)
    pipeline.fit(features, target)
    return FittedCandidate(
        family=family,
        params={**DEFAULT_PARAMS[family], **(params or {})},
        pipeline=pipeline,
        cv_roc_auc_mean=float(scores.mean()),
        cv_roc_auc_std=float(scores.std()),
        train_rows=len(frame),
    )


def predict_positive(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    return pipeline.predict_proba(features)[:, 1]
