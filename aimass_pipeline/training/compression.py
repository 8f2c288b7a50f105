"""Post-training compression, kept only when it scores the same (within tolerance), is markedly smaller and
not slower for one row (batch latency is measured and reported).

Torch estimators get dynamic int8 quantization of their nn.Linear layers. Scikit-learn Pipelines ending in a
linear or tree model keep their Python preprocessing and run the final step in onnxruntime: exporting the
whole pipeline would need a converter for every custom transformer (FunctionTransformer(add_ratios) has none).
"""

from __future__ import annotations

import copy
import sys
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from aimass_pipeline.core.latency import latency_ms
from aimass_pipeline.core.scoring import score
from aimass_pipeline.models.onnx_head import OnnxHeadClassifier

SKLEARN_HEADS = (LogisticRegression, RandomForestClassifier, ExtraTreesClassifier)
# A second format is worth keeping when it shrinks the artifact at least this much (deterministic).
MIN_SIZE_GAIN = 0.8
# Refused as slower only beyond this single-row margin: timings on a shared 2-core box wander by 10-20 %.
SLOWER_LIMIT = 0.5


@dataclass
class CompressionResult:
    method: str  # "int8-dynamic" | "onnx" | "none"
    kept: bool
    compressed: Any | None  # the compressed estimator whenever one was built, kept or not
    reason: str
    metric: str
    rows: int
    size_before: int | None = None  # bytes of the pickled artifact (ONNX bytes included)
    size_after: int | None = None
    latency_ms_per_row_single_before: float | None = None  # median of one-row predict_proba calls
    latency_ms_per_row_single_after: float | None = None
    latency_ms_per_row_batch_before: float | None = None  # median whole-batch call / rows
    latency_ms_per_row_batch_after: float | None = None
    metric_before: float | None = None
    metric_after: float | None = None
    max_abs_proba_diff: float | None = None

    def as_dict(self) -> dict:
        """Everything but the estimator, e.g. for the model card."""
        return {k: v for k, v in asdict(self).items() if k != "compressed"}

    def as_metrics(self) -> dict[str, float]:
        numbers = {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("method", "compressed", "reason", "metric")
            and getattr(self, f.name) is not None
        }
        if self.size_before and self.size_after:
            numbers["size_ratio"] = self.size_after / self.size_before
        if self.latency_ms_per_row_batch_before and self.latency_ms_per_row_batch_after:
            numbers["batch_latency_ratio"] = (
                self.latency_ms_per_row_batch_after / self.latency_ms_per_row_batch_before
            )
        return {f"compression.{k}": v for k, v in numbers.items()}


def _loaded(module: str) -> Any | None:
    # An object can only be a torch/xgboost instance if that library is already imported; checking
    # sys.modules keeps compressing a logistic regression from importing torch.
    return sys.modules.get(module)


def _torch_module(estimator: Any) -> tuple[Any, str] | None:
    """(owner, attribute) of the nn.Module held by the estimator, or by a pipeline's final step."""
    torch = _loaded("torch")
    if torch is None:
        return None
    owner = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    names = sorted(vars(owner), key=lambda name: name != "module_")  # the skorch-style name first
    return next(((owner, n) for n in names if isinstance(getattr(owner, n), torch.nn.Module)), None)


def _quantize(estimator: Any) -> Any | None:
    import torch

    compressed = copy.deepcopy(estimator)
    owner, name = _torch_module(compressed)
    module = getattr(owner, name)
    # quantize_dynamic swaps children only, so a bare nn.Linear root would be left as it is.
    if not any(isinstance(m, torch.nn.Linear) for m in list(module.modules())[1:]):
        return None
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it moves to torchao, which this platform does not ship.
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        quantized = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)
    setattr(owner, name, quantized)
    return compressed


def _head_to_onnx(head: Any, n_features: int) -> bytes:
    xgboost = _loaded("xgboost")
    if xgboost is not None and isinstance(head, xgboost.XGBClassifier):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        # onnxmltools only reads feature names "f0".."fN"; a pandas-output pipeline leaves real names.
        head = copy.deepcopy(head)
        head.get_booster().feature_names = None
        head.get_booster().feature_types = None
        model = onnxmltools.convert_xgboost(
            head, initial_types=[("input", FloatTensorType([None, n_features]))]
        )
    else:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        options = {id(head): {"zipmap": False}}  # a plain probability matrix, not a list of dicts
        model = convert_sklearn(
            head, initial_types=[("input", FloatTensorType([None, n_features]))], options=options
        )
    return model.SerializeToString()


def _to_onnx(pipeline: Pipeline, X: pd.DataFrame) -> OnnxHeadClassifier | str:
    """The ONNX-headed copy, or why the pipeline is not supported."""
    head = pipeline[-1]
    xgboost = _loaded("xgboost")
    is_xgb = xgboost is not None and isinstance(head, xgboost.XGBClassifier)
    if not (isinstance(head, SKLEARN_HEADS) or is_xgb):
        return f"no ONNX path for a final step of type {type(head).__name__}"
    if is_xgb and "c" in (head.get_booster().feature_types or []):
        return "XGBoost categorical splits have no ONNX tree-ensemble equivalent"
    preprocess = copy.deepcopy(pipeline[:-1])
    features = preprocess.transform(X.iloc[:1])
    if hasattr(features, "toarray"):  # scipy sparse, e.g. TF-IDF over a vocabulary
        # The head would need each row densified to the vocabulary's width to run one sparse dot product
        # that scikit-learn already runs in microseconds: an ONNX head does not pay here.
        return "sparse features (TF-IDF): a dense ONNX head would be slower than the sparse linear model"
    n_features = np.asarray(features).shape[1]
    return OnnxHeadClassifier(preprocess, _head_to_onnx(head, n_features), np.asarray(head.classes_))


def compress(
    estimator: Any,
    X_sample: pd.DataFrame,
    y_sample: np.ndarray,
    *,
    metric: str,
    tolerance: float,
    seed: int = 42,
) -> CompressionResult:
    """Compress by estimator type and measure the trade-off on X_sample; unsupported types give method "none"."""
    if metric not in ("roc_auc", "accuracy"):
        raise ValueError(f"unknown compression metric {metric!r}")
    y = np.asarray(y_sample)
    if len(X_sample) != len(y) or len(y) < 2:
        raise ValueError(
            f"X_sample ({len(X_sample)} rows) and y_sample ({len(y)}) must match, with >= 2 rows"
        )
    common = dict(metric=metric, rows=len(y))
    if _torch_module(estimator) is not None:
        method, compressed = "int8-dynamic", _quantize(estimator)
        why_not = "the torch module has no nn.Linear layer below its root to quantize"
    elif isinstance(estimator, Pipeline):
        method, built = "onnx", _to_onnx(estimator, X_sample)
        compressed, why_not = (None, built) if isinstance(built, str) else (built, "")
    else:
        method, compressed = "none", None
        why_not = f"{type(estimator).__name__} is neither torch-based nor a scikit-learn Pipeline"
    if compressed is None:
        return CompressionResult(method="none", kept=False, compressed=None, reason=why_not, **common)

    # Labels as class indices, the columns of predict_proba.
    y = np.searchsorted(np.asarray(estimator.classes_), y)
    proba_before, proba_after = estimator.predict_proba(X_sample), compressed.predict_proba(X_sample)
    metric_before, metric_after = (score(metric, y, p) for p in (proba_before, proba_after))
    (single_before, batch_before), (single_after, batch_after) = latency_ms(
        [estimator, compressed], X_sample, seed
    )
    if method == "int8-dynamic":
        # Dynamic quantisation scales activations per call, so a served single-row request is scored by a
        # slightly different model than a batch: judge the variant by its worse case of the two.
        by_row = np.vstack([compressed.predict_proba(X_sample.iloc[[i]]) for i in range(len(X_sample))])
        metric_after = min(metric_after, score(metric, y, by_row))
        proba_after = (
            by_row
            if np.abs(by_row - proba_before).max() > np.abs(proba_after - proba_before).max()
            else proba_after
        )
    refusals = []
    if metric_before - metric_after > tolerance:
        refusals.append(f"{metric} drops {metric_before - metric_after:.6f} > tolerance {tolerance:g}")
    # The decision uses only what repeats exactly (metric, size) and a wide single-row margin: a keep/refuse
    # that flipped with timing noise would change predictions between two runs of the same code and data.
    if single_after > single_before * (1 + SLOWER_LIMIT):
        refusals.append(
            f"slower: {single_after:.4f} ms for one row against {single_before:.4f} (+{SLOWER_LIMIT:.0%} allowed)"
        )
    size_before, size_after = len(cloudpickle.dumps(estimator)), len(cloudpickle.dumps(compressed))
    if size_after > size_before * MIN_SIZE_GAIN:
        refusals.append(f"no gain: {size_after / size_before:.2f}x the size, not <= {MIN_SIZE_GAIN:.2f}x")
    summary = (
        f"{metric} {metric_before:.4f} -> {metric_after:.4f}, "
        f"batch {batch_before:.4f} -> {batch_after:.4f} ms/row"
    )
    return CompressionResult(
        method=method,
        kept=not refusals,
        compressed=compressed,
        reason=f"discarded {method}: " + "; ".join(refusals) if refusals else f"kept {method}: {summary}",
        size_before=size_before,  # cloudpickle, as MLflow saves models
        size_after=size_after,
        latency_ms_per_row_single_before=single_before,
        latency_ms_per_row_single_after=single_after,
        latency_ms_per_row_batch_before=batch_before,
        latency_ms_per_row_batch_after=batch_after,
        metric_before=metric_before,
        metric_after=metric_after,
        max_abs_proba_diff=float(np.abs(np.asarray(proba_before) - np.asarray(proba_after)).max()),
        **common,
    )
