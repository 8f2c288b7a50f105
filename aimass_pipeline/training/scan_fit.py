"""XGBoost on a scanned training set: a ``QuantileDMatrix`` fed batch by batch by an iterator, so the
matrix holds quantised bins (one byte per value) instead of the float frame."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.pipeline import Pipeline

from aimass_pipeline.core.scan import ScanTable

FIT_PATH = "quantile_dmatrix_iterator"


class _Batches(xgb.DataIter):
    """The training set's batches through the pipeline's fitted encoder."""

    def __init__(self, table: ScanTable, encode: Pipeline, features: list[str], label: str, keep, key: str):
        self._table, self._encode, self._features, self._label = table, encode, features, label
        self._keep, self._key = keep, key
        self._batches = None
        self.rows, self._passes = 0, 0
        super().__init__()

    def reset(self) -> None:
        self._passes += 1
        self._batches = self._table.batches(list(dict.fromkeys([self._key, *self._features, self._label])))

    def next(self, input_data) -> bool:
        if self._batches is None:
            self.reset()
        batch = next(self._batches, None)
        if batch is None:
            return False
        frame = batch.to_pandas()
        if self._keep is not None:
            frame = frame.loc[self._keep(frame)]
        if self._passes <= 1:
            self.rows += len(frame)
        encoded = np.asarray(self._encode.transform(frame[self._features]), dtype=np.float32)
        input_data(data=encoded, label=frame[self._label].to_numpy())
        return True


def fit_xgboost_scan(
    pipeline: Pipeline,
    table: ScanTable,
    sample: pd.DataFrame,
    features: list[str],
    label: str,
    n_classes: int,
    *,
    key: str,
    keep: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> tuple[Pipeline, int]:
    """Fit an unfitted xgboost family pipeline on every row of ``table`` that ``keep`` keeps (all by
    default); returns it and the number of rows it was fitted on.

    The steps before the model (ratios, encoder) are fitted on ``sample``: they learn only the category
    levels (the contract fixes them) and pass numbers through. The model trains on all rows streamed."""
    encode = Pipeline(pipeline.steps[:-1])
    encode.fit(sample[features])
    model = pipeline.steps[-1][1]
    params = model.get_xgb_params()
    if n_classes > 2:
        params["num_class"] = n_classes
    batches = _Batches(table, encode, features, label, keep, key)
    matrix = xgb.QuantileDMatrix(batches, max_bin=model.max_bin or 256)
    model._Booster = xgb.train(params, matrix, num_boost_round=model.n_estimators)
    model.n_classes_ = n_classes
    return pipeline, batches.rows
