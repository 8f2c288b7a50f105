"""A fitted pipeline whose final estimator runs in onnxruntime, as a picklable scikit-learn classifier.

Kept apart from compression.py because this class is the serving artifact: pickles refer to it by this
module path, so it must stay importable and small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin


class OnnxHeadClassifier(ClassifierMixin, BaseEstimator):
    """A fitted pipeline's preprocessing in Python, its final estimator as ONNX in onnxruntime.

    Frozen like sklearn.frozen.FrozenEstimator: fit is a no-op and clone returns self, since cloning the
    parameters would hand back an unfitted preprocessing pipeline. Pickles carry the ONNX bytes only;
    the inference session is rebuilt lazily after unpickling.
    """

    # Imported lazily, so no pickle names it: the model's requirements (training.tracking) read this.
    runtime_packages: tuple[str, ...] = ("onnxruntime",)

    def __init__(self, preprocess: Any = None, onnx_model: bytes = b"", classes: Any = None) -> None:
        self.preprocess = preprocess
        self.onnx_model = onnx_model
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def __sklearn_clone__(self) -> OnnxHeadClassifier:
        return self

    def fit(self, X: Any = None, y: Any = None) -> OnnxHeadClassifier:
        return self

    def _session(self) -> Any:
        if getattr(self, "_onnx_session", None) is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            # One thread: serving runs several workers per host, and one-row requests gain nothing from more.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._onnx_session = onnxruntime.InferenceSession(
                self.onnx_model, options, providers=["CPUExecutionProvider"]
            )
        return self._onnx_session

    def predict_proba(self, X: Any) -> np.ndarray:
        features = X if self.preprocess is None else self.preprocess.transform(X)
        if sparse.issparse(features):
            features = features.toarray()
        session = self._session()
        # Converters emit a label tensor and a 2-D probability tensor (zipmap disabled); take the latter.
        output = next(o.name for o in session.get_outputs() if len(o.shape or ()) == 2)
        proba = session.run([output], {session.get_inputs()[0].name: np.asarray(features, np.float32)})[0]
        return proba.astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: on Python 3.11 the parent returns __dict__ itself
        state.pop("_onnx_session", None)  # an InferenceSession does not pickle
        return state
