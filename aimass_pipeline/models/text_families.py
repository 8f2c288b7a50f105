"""Families for free text: the features are fitted inside the pipeline, so a served request is featurised by
exactly what training fitted (the vocabulary and IDF weights, or the hashed embeddings).

- ``text_logreg``: TF-IDF (word or character n-grams, scikit-learn) and logistic regression;
- ``torch_text``: an EmbeddingBag over hashed word n-grams and a linear head (``models.torch_text``).

Both take only the layout's text columns (one vectoriser per column); a text use case lists these families.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from aimass_pipeline.core.text_contract import TOKEN_PATTERN
from aimass_pipeline.models.base import TEXT, FamilyBase, FeatureLayout


def _per_column(layout: FeatureLayout, make: Any) -> ColumnTransformer:
    # A column given by name (not a list) hands the vectoriser a 1-D array of strings, as it expects.
    return ColumnTransformer([(f"txt_{i}", make(), name) for i, name in enumerate(layout.text)])


class TextLogRegFamily(FamilyBase):
    name = "text_logreg"
    supports = frozenset({TEXT})
    serialization = "skops"
    skops_trusted_types = ["numpy.float64"]  # TfidfVectorizer's dtype parameter is a numpy type
    param_names = frozenset(
        {"C", "class_weight", "max_iter", "ngram_max", "min_df", "max_features", "sublinear_tf", "analyzer"}
    )

    def default_params(self, layout: FeatureLayout, n_classes: int) -> dict[str, Any]:
        # scikit-learn's own defaults on both steps: the untuned baseline the use case reports.
        return {
            "C": 1.0,
            "class_weight": None,
            "max_iter": 2000,
            "ngram_max": 1,
            "min_df": 1,
            "max_features": None,
            "sublinear_tf": False,
            "analyzer": "word",
        }

    def build(self, layout: FeatureLayout, n_classes: int, params: dict[str, Any], seed: int) -> Pipeline:
        merged = self.merged_params(layout, n_classes, params)
        analyzer = str(merged["analyzer"])
        low = 2 if analyzer == "char_wb" else 1  # single characters carry nothing

        def vectoriser() -> TfidfVectorizer:
            return TfidfVectorizer(
                analyzer=analyzer,
                token_pattern=TOKEN_PATTERN,
                ngram_range=(low, max(low, int(merged["ngram_max"]))),
                min_df=int(merged["min_df"]),
                max_features=None if merged["max_features"] is None else int(merged["max_features"]),
                sublinear_tf=bool(merged["sublinear_tf"]),
                dtype="float64",
            )

        model = LogisticRegression(
            C=float(merged["C"]),
            class_weight=merged["class_weight"],
            max_iter=int(merged["max_iter"]),
            random_state=seed,
        )
        return Pipeline([("encode", _per_column(layout, vectoriser)), ("model", model)])


class TorchTextFamily(FamilyBase):
    name = "torch_text"
    supports = frozenset({TEXT})
    serialization = "skops"
    skops_trusted_types = ["aimass_pipeline.models.torch_text.TorchTextClassifier"]
    param_names = frozenset(
        {
            "embedding_dim",
            "n_buckets",
            "ngram_max",
            "learning_rate",
            "weight_decay",
            "batch_size",
            "max_epochs",
        }
    )

    def default_params(self, layout: FeatureLayout, n_classes: int) -> dict[str, Any]:
        return {
            "embedding_dim": 32,
            "n_buckets": 1 << 14,
            "ngram_max": 2,
            "learning_rate": 0.05,
            "weight_decay": 0.0,
            "batch_size": 64,
            "max_epochs": 8,
        }

    def build(self, layout: FeatureLayout, n_classes: int, params: dict[str, Any], seed: int) -> Pipeline:
        from aimass_pipeline.models.torch_text import TorchTextClassifier

        merged = self.merged_params(layout, n_classes, params)
        model: BaseEstimator = TorchTextClassifier(n_classes=n_classes, random_state=seed, **merged)
        encode = ColumnTransformer([("txt", "passthrough", list(layout.text))])
        return Pipeline([("encode", encode), ("model", model)])
