"""A soft-voting ensemble of fitted candidates: the mean of their class probabilities.

Nothing is fitted on top of the members (no weights), so the holdout that later judges the ensemble has
not been used to build it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin


class SoftVotingEnsemble(ClassifierMixin, BaseEstimator):
    def __init__(self, members: list[Any] | None = None, names: list[str] | None = None) -> None:
        self.members = members
        self.names = names

    def _check(self) -> list[Any]:
        if not self.members:
            raise ValueError("a soft-voting ensemble needs at least one fitted member")
        classes = [tuple(np.asarray(m.classes_).tolist()) for m in self.members]
        if len(set(classes)) != 1:
            raise ValueError(f"ensemble members disagree on the classes: {sorted(set(classes))}")
        return self.members

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self._check()[0].classes_)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> SoftVotingEnsemble:
        # The members arrive fitted (each is its own tracked candidate); refitting here would bypass tuning.
        self._check()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        probas = [np.asarray(m.predict_proba(X), dtype=np.float64) for m in self._check()]
        return np.mean(probas, axis=0)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
