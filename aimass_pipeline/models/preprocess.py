"""Column handling shared by the families, built only from types skops can be told to trust."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from aimass_pipeline.models.base import FeatureLayout
from aimass_pipeline.models.ratios import add_ratios, ratio_names

NumericSteps = BaseEstimator | str  # a transformer, or "passthrough"


def numeric_columns(layout: FeatureLayout) -> list[str]:
    """The numeric columns the encoder sees, ratio features included when the layout derives them."""
    if layout.derive_ratios:
        return [*layout.numeric, *ratio_names(layout.numeric)]
    return list(layout.numeric)


def categorical_steps() -> Pipeline:
    # Frames carry a missing category as None (JSON null) or NaN (pandas); SimpleImputer matches only one
    # marker per instance, so two of them map both to one "missing" level instead of two distinct levels.
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        SimpleImputer(missing_values=None, strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )


def impute_scale(log1p: bool = False, scale: bool = True) -> Pipeline:
    """Median imputation with missingness indicators; log1p assumes non-negative inputs (NaN otherwise)."""
    steps: list[BaseEstimator] = [SimpleImputer(strategy="median", add_indicator=True)]
    if log1p:
        steps.append(FunctionTransformer(np.log1p, feature_names_out="one-to-one"))
    if scale:
        steps.append(StandardScaler())
    return make_pipeline(*steps)


def with_encoder(layout: FeatureLayout, numeric: NumericSteps, model: BaseEstimator) -> Pipeline:
    """ratios (optional) -> per-column encoding -> model; the step names match training.build_pipeline."""
    parts: list[tuple[str, NumericSteps, list[str]]] = []
    if layout.numeric:
        parts.append(("num", numeric, numeric_columns(layout)))
    if layout.categorical:
        parts.append(("cat", categorical_steps(), list(layout.categorical)))
    # Selecting columns by name also fixes their order, which the CNN relies on to rebuild the image.
    encode = ColumnTransformer(parts, verbose_feature_names_out=False)
    steps: list[tuple[str, BaseEstimator]] = []
    if layout.derive_ratios:
        steps.append(("ratios", FunctionTransformer(add_ratios, feature_names_out=None)))
    steps += [("encode", encode), ("model", model)]
    return Pipeline(steps)
