"""scikit-learn and XGBoost families: whole pipelines that skops can store and reload."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from aimass_pipeline.models.base import IMAGE, TABULAR, FamilyBase, FeatureLayout
from aimass_pipeline.models.preprocess import impute_scale, with_encoder

# Besides skops' defaults (numpy, scipy, most of scikit-learn). Listed once per family so a registry can
# trust exactly what the champion's family needs; checked against skops in the tests.
_RATIOS = "aimass_pipeline.models.ratios.add_ratios"
_NUMPY = ["numpy.dtype"]


class LogRegFamily(FamilyBase):
    name = "logreg"
    supports = frozenset({TABULAR, IMAGE})
    serialization = "skops"
    skops_trusted_types = [_RATIOS, *_NUMPY]
    param_names = frozenset({"C", "max_iter", "tol", "class_weight", "log1p"})

    def default_params(self, layout: FeatureLayout, n_classes: int) -> dict[str, Any]:
        # log1p tames the heavy right tails of money columns; it is only safe on non-negative inputs, which
        # is what the ratio-deriving credit layout guarantees, so it defaults on there and off elsewhere.
        return {"C": 0.5, "max_iter": 2000, "tol": 1e-4, "class_weight": None, "log1p": layout.derive_ratios}

    def build(self, layout: FeatureLayout, n_classes: int, params: dict[str, Any], seed: int) -> Pipeline:
        merged = self.merged_params(layout, n_classes, params)
        log1p = bool(merged.pop("log1p"))
        model = LogisticRegression(random_state=seed, **merged)  # lbfgs: multinomial when K > 2
        if layout.kind == IMAGE:
            return with_encoder(layout, StandardScaler(), model)
        return with_encoder(layout, impute_scale(log1p=log1p), model)


class RandomForestFamily(FamilyBase):
    name = "random_forest"
    supports = frozenset({TABULAR, IMAGE})
    serialization = "skops"
    skops_trusted_types = [_RATIOS, *_NUMPY, "sklearn.tree._tree.Tree"]
    param_names = frozenset(
        {
            "n_estimators",
            "max_depth",
            "min_samples_leaf",
            "max_features",
            "criterion",
            "class_weight",
            "bootstrap",
            "extra_trees",
        }
    )

    def default_params(self, layout: FeatureLayout, n_classes: int) -> dict[str, Any]:
        return {
            "n_estimators": 300,
            "max_depth": None,
            "min_samples_leaf": 2 if layout.kind == TABULAR else 1,
            "max_features": "sqrt",
            "criterion": "gini",
            "class_weight": None,
            "bootstrap": True,
            "extra_trees": False,
        }

    def build(self, layout: FeatureLayout, n_classes: int, params: dict[str, Any], seed: int) -> Pipeline:
        merged = self.merged_params(layout, n_classes, params)
        # Extremely randomised trees are one switch away and often win on small noisy tables, so the tuner
        # may pick them; n_jobs=1 keeps training reproducible and leaves the cores to the orchestrator.
        estimator = ExtraTreesClassifier if merged.pop("extra_trees") else RandomForestClassifier
        model = estimator(random_state=seed, n_jobs=1, **merged)
        if layout.kind == IMAGE:
            return with_encoder(layout, "passthrough", model)
        # Indicators keep "was missing" as a signal after imputation; trees need no scaling.
        return with_encoder(layout, impute_scale(scale=False), model)


class XGBoostFamily(FamilyBase):
    name = "xgboost"
    supports = frozenset({TABULAR, IMAGE})
    serialization = "skops"
    skops_trusted_types = [_RATIOS, *_NUMPY, "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"]
    param_names = frozenset(
        {
            "n_estimators",
            "learning_rate",
            "max_depth",
            "subsample",
            "colsample_bytree",
            "min_child_weight",
            "reg_lambda",
            "reg_alpha",
            "gamma",
        }
    )

    def default_params(self, layout: FeatureLayout, n_classes: int) -> dict[str, Any]:
        # K classes cost K trees per round, so multiclass trades rounds for a larger step.
        rounds, rate = (400, 0.03) if n_classes == 2 else (200, 0.1)
        return {
            "n_estimators": rounds,
            "learning_rate": rate,
            "max_depth": 4,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "min_child_weight": 2,
            "reg_lambda": 1.0,
            "reg_alpha": 0.0,
            "gamma": 0.0,
        }

    def build(self, layout: FeatureLayout, n_classes: int, params: dict[str, Any], seed: int) -> Pipeline:
        merged = self.merged_params(layout, n_classes, params)
        objective = "binary:logistic" if n_classes == 2 else "multi:softprob"
        model = XGBClassifier(objective=objective, random_state=seed, n_jobs=1, tree_method="hist", **merged)
        # XGBoost learns a default direction for missing values; imputing would hide that signal.
        return with_encoder(layout, "passthrough", model)
