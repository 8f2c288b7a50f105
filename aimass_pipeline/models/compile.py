"""Compile a fitted champion, preprocessing included, into one ONNX inference graph run by onnxruntime.

A pipeline (ratios -> column encoding -> estimator) becomes one graph; a soft-voting ensemble becomes one
graph whose members share the preprocessing they have in common and whose probabilities are averaged
inside it. The compiled model is checked against the pipeline it came from on the rows it is given
(``max_abs_diff`` of the class probabilities, at most ``tolerance``) and refused otherwise, so a served
compiled model never scores differently from what the gate judged. It is ONNX bytes plus column names and
classes: nothing is unpickled to load it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import pandas as pd
from onnx import helper
from pandas.api.types import is_numeric_dtype
from sklearn.pipeline import Pipeline

from aimass_pipeline.models.compile_graph import MISSING_TEXT, NONE_TEXT, GraphBuilder, UnsupportedStep
from aimass_pipeline.models.compile_heads import OPSET, head

# float32 inside the graph: probabilities of the pipelines tested differ by < 1e-5; a tree split landing
# exactly between a float64 value and its float32 rounding can move one tree's vote, hence the margin.
DEFAULT_TOLERANCE = 1e-3


class CompileError(ValueError):
    """The model cannot be compiled, or its compiled graph disagrees with it."""


def _members(model: Any) -> list[Any]:
    if type(model).__name__ == "SoftVotingEnsemble":
        return list(model.members)
    return [model]


def _n_features(estimator: Any) -> int:
    args = getattr(estimator, "network_args_", None)
    if args is not None:
        if "n_inputs" not in args:  # a CNN: its input is an image, not a flat feature row
            raise UnsupportedStep(f"no ONNX converter for the estimator {type(estimator).__name__}")
        return int(args["n_inputs"])
    if not hasattr(estimator, "n_features_in_"):
        raise UnsupportedStep(f"no ONNX converter for the estimator {type(estimator).__name__}")
    return int(estimator.n_features_in_)


def _graph(model: Any, numeric: list[str], categorical: list[str]) -> onnx.ModelProto:
    builder = GraphBuilder(numeric, categorical)
    probas = []
    for i, member in enumerate(_members(model)):
        if type(member).__name__ == "OnnxHeadClassifier":
            steps, estimator = list(member.preprocess.named_steps.values()), member
            width = _onnx_width(member)
        elif isinstance(member, Pipeline):
            steps, estimator = [s for _, s in member.steps[:-1]], member.steps[-1][1]
            width = _n_features(estimator)
        else:
            raise UnsupportedStep(f"member {i} is a {type(member).__name__}, not a pipeline")
        encoded = builder.encode(steps)
        probas.append(head(builder, estimator, encoded, width, f"m{i}_"))
    out = (
        probas[0]
        if len(probas) == 1
        else builder.op("Div", [builder.op("Sum", probas), builder.const(np.float32(len(probas)))], "mean")
    )
    builder.nodes.append(helper.make_node("Identity", [out], ["probabilities"], name="probabilities"))
    graph = helper.make_graph(
        builder.nodes,
        "aimass_champion",
        builder.inputs,
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, None])],
        builder.initializers,
    )
    opsets = [helper.make_opsetid(domain, version) for domain, version in OPSET.items()]
    compiled = helper.make_model(graph, opset_imports=opsets, producer_name="aimass")
    compiled.ir_version = 9
    onnx.checker.check_model(compiled)
    return compiled


def _onnx_width(member: Any) -> int:
    shape = onnx.load_from_string(member.onnx_model).graph.input[0].type.tensor_type.shape
    return int(shape.dim[1].dim_value)


@dataclass
class CompiledModel:
    """One ONNX graph from raw columns to class probabilities; ``predict_proba`` like the pipeline."""

    onnx_model: bytes
    numeric: list[str]
    categorical: list[str]
    classes: list[Any]
    max_abs_diff: float = float("nan")  # against the source pipeline on the rows it was checked on
    checked_rows: int = 0
    _session: Any = field(default=None, repr=False)

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    def session(self) -> Any:
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            # One thread per inference: several workers share a small host; one row gains nothing from more.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(
                self.onnx_model, options, providers=["CPUExecutionProvider"]
            )
        return self._session

    def _run(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        (proba,) = self.session().run(None, {"numeric": numeric, "categorical": categorical})
        proba = proba.astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        numeric = (
            X[self.numeric].to_numpy(dtype=np.float32, na_value=np.nan)
            if self.numeric
            else np.zeros((len(X), 0), np.float32)
        )
        categorical = (
            X[self.categorical].astype(object).to_numpy()
            if self.categorical
            else np.zeros((len(X), 0), object)
        )
        return self._run(numeric, _text(categorical))

    def predict_rows(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Probabilities straight from request records (dicts), without building a DataFrame."""
        numeric = np.array([[row[n] for n in self.numeric] for row in rows], dtype=np.float32).reshape(
            len(rows), len(self.numeric)
        )
        categorical = np.array(
            [[NONE_TEXT if row[c] is None else row[c] for c in self.categorical] for row in rows],
            dtype=object,
        ).reshape(len(rows), len(self.categorical))
        return self._run(numeric, categorical)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _text(values: np.ndarray) -> np.ndarray:
    out = values.astype(object).copy()
    none = np.vectorize(lambda v: v is None, otypes=[bool])(out) if out.size else np.zeros(out.shape, bool)
    out[pd.isna(values) & ~none] = MISSING_TEXT
    out[none] = NONE_TEXT
    return np.vectorize(str, otypes=[object])(out) if out.size else out


def compile_model(model: Any, rows: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE) -> CompiledModel:
    """The compiled graph of ``model``, checked on every row of ``rows`` (e.g. the whole holdout).

    Raises CompileError naming the step it cannot compile, or the largest disagreement and its row."""
    if rows.empty:
        raise CompileError("compile_model needs rows to check the compiled graph against the model")
    numeric = [c for c in rows.columns if is_numeric_dtype(rows[c])]
    categorical = [c for c in rows.columns if c not in numeric]
    try:
        graph = _graph(model, numeric, categorical)
    except UnsupportedStep as exc:
        raise CompileError(f"cannot compile {type(model).__name__}: {exc}") from exc
    except Exception as exc:  # a converter's own failure: the model is served uncompiled, never crashes
        raise CompileError(f"cannot compile {type(model).__name__}: {type(exc).__name__}: {exc}") from exc
    compiled = CompiledModel(
        graph.SerializeToString(), numeric, categorical, list(np.asarray(model.classes_).tolist())
    )
    expected = np.asarray(model.predict_proba(rows), dtype=np.float64)
    try:
        got = compiled.predict_proba(rows)
    except Exception as exc:  # onnxruntime refused the graph: served uncompiled
        raise CompileError(
            f"compiled {type(model).__name__} does not run: {type(exc).__name__}: {exc}"
        ) from exc
    diff = np.abs(expected - got).max(axis=1)
    worst = int(diff.argmax())
    if not diff[worst] <= tolerance:
        raise CompileError(
            f"compiled {type(model).__name__} disagrees with it by {diff[worst]:.3g} > {tolerance:g} on row "
            f"{worst} of {len(rows)} ({rows.index[worst]!r})"
        )
    compiled.max_abs_diff = float(diff[worst])
    compiled.checked_rows = len(rows)
    return compiled
