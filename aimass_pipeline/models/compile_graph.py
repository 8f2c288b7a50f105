"""ONNX nodes for the preprocessing our pipelines fit: ratios, column selection, imputation, log1p, scaling,
one-hot encoding. Written by hand from the fitted parameters because skl2onnx has no converter for our
FunctionTransformer(add_ratios) and none that selects a DataFrame's columns by name after it.

A ``GraphBuilder`` holds one growing graph. Raw columns arrive as two inputs (``numeric``: float32 [N, n],
NaN when missing; ``categorical``: string [N, m], "" when missing). Each transformer is emitted once per
distinct fitted state and input: ensemble members fitted on the same data share one preprocessing pass.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from aimass_pipeline.models.ratios import RATIOS, add_ratios

# How a missing category reaches the graph. sklearn tells NaN from None (a SimpleImputer imputes one of
# them), so the graph does too.
MISSING_TEXT = ""  # NaN
NONE_TEXT = "__none__"  # None (plain ASCII: onnxruntime mangled NUL and non-ASCII markers)


def _label(category: Any) -> str:
    if category is None:
        return NONE_TEXT
    return MISSING_TEXT if isinstance(category, float) and np.isnan(category) else str(category)


class UnsupportedStep(ValueError):
    """A fitted step the compiler has no ONNX for; the caller serves the pipeline as it is."""


def _fingerprint(obj: Any) -> str:
    # Compile-time only (never loaded back): identical fitted states pickle to identical bytes.
    return hashlib.sha256(pickle.dumps(obj)).hexdigest()[:16]


class GraphBuilder:
    def __init__(self, numeric: list[str], categorical: list[str]) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs = [
            helper.make_tensor_value_info("numeric", TensorProto.FLOAT, [None, len(numeric)]),
            helper.make_tensor_value_info("categorical", TensorProto.STRING, [None, len(categorical)]),
        ]
        self._n = 0
        self._memo: dict[tuple[str, ...], str] = {}
        # Every raw column as an [N, 1] tensor, sliced on first use.
        self.columns: dict[str, tuple[str, int, bool]] = {
            **{name: ("numeric", i, True) for i, name in enumerate(numeric)},
            **{name: ("categorical", i, False) for i, name in enumerate(categorical)},
        }
        self._sliced: dict[str, str] = {}

    # -- primitives -------------------------------------------------------------------------------
    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "c") -> str:
        name = self.name(hint)
        array = np.asarray(value)
        if array.dtype == object:
            tensor = helper.make_tensor(
                name, TensorProto.STRING, array.shape, [str(v).encode() for v in array.flat]
            )
        else:
            tensor = numpy_helper.from_array(array, name)
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def memo(self, key: tuple[str, ...], build: Any) -> str:
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def column(self, name: str) -> tuple[str, bool]:
        """(tensor [N, 1], is_numeric) of one raw or derived column."""
        if name not in self.columns:
            raise UnsupportedStep(f"column {name!r} is not an input of the compiled graph")
        source, index, numeric = self.columns[name]
        if name not in self._sliced:
            if source in ("numeric", "categorical"):
                idx = self.const(np.array([index], dtype=np.int64), "idx")
                self._sliced[name] = self.op("Gather", [source, idx], f"col_{name}", axis=1)
            else:
                self._sliced[name] = source
        return self._sliced[name], numeric

    def select(self, names: list[str]) -> tuple[str, bool]:
        parts = [self.column(n) for n in names]
        kinds = {numeric for _, numeric in parts}
        if len(kinds) != 1:
            raise UnsupportedStep(f"columns {names} mix numbers and text in one transformer")
        tensors = [t for t, _ in parts]
        joined = tensors[0] if len(tensors) == 1 else self.op("Concat", tensors, "select", axis=1)
        return joined, kinds.pop()

    # -- transformers -----------------------------------------------------------------------------
    def add_ratios(self) -> None:
        for ratio, (num, den) in RATIOS.items():
            if num in self.columns and den in self.columns and ratio not in self.columns:
                n, _ = self.column(num)
                d, _ = self.column(den)
                # A zero denominator gives NaN, as add_ratios does (never inf).
                zero = self.op("Equal", [d, self.const(np.float32(0.0))])
                div = self.op("Div", [n, d])
                out = self.op("Where", [zero, self.const(np.float32(np.nan)), div], f"ratio_{ratio}")
                self.columns[ratio] = (out, -1, True)

    def transform(self, step: Any, x: str, numeric: bool) -> str:
        """The output tensor of one fitted transformer applied to ``x``."""
        # A fitted ColumnTransformer holds "passthrough" as an identity FunctionTransformer.
        if (isinstance(step, str) and step == "passthrough") or (
            isinstance(step, FunctionTransformer) and step.func is None
        ):
            return x
        key = (_fingerprint(step), x)
        return self.memo(key, lambda: self._transform(step, x, numeric))

    def _transform(self, step: Any, x: str, numeric: bool) -> str:
        if isinstance(step, Pipeline):
            for _, inner in step.steps:
                x = self.transform(inner, x, numeric)
                numeric = numeric or isinstance(inner, OneHotEncoder)
            return x
        if isinstance(step, SimpleImputer):
            return self._impute(step, x, numeric)
        if isinstance(step, FunctionTransformer) and step.func is np.log1p and step.inverse_func is None:
            return self.op("Log", [self.op("Add", [x, self.const(np.float32(1.0))])], "log1p")
        if isinstance(step, StandardScaler):
            if step.mean_ is not None:
                x = self.op("Sub", [x, self.const(step.mean_.astype(np.float32).reshape(1, -1))])
            if step.scale_ is not None:
                x = self.op("Div", [x, self.const(step.scale_.astype(np.float32).reshape(1, -1))])
            return x
        if isinstance(step, OneHotEncoder):
            return self._one_hot(step, x)
        raise UnsupportedStep(f"no ONNX for {type(step).__name__} {step!r}")

    def _impute(self, step: SimpleImputer, x: str, numeric: bool) -> str:
        stats = np.asarray(step.statistics_)
        if numeric:
            missing = step.missing_values
            if not (isinstance(missing, float) and np.isnan(missing)):
                raise UnsupportedStep(f"numeric SimpleImputer with missing_values={missing!r}")
            mask = self.op("IsNaN", [x])
            kept = np.array([not (isinstance(v, float) and np.isnan(v)) for v in stats.astype(float)])
            fill = self.const(np.where(kept, stats.astype(float), 0.0).astype(np.float32).reshape(1, -1))
            out = self.op("Where", [mask, fill, x], "impute")
            if not kept.all():  # sklearn drops columns that were empty in training
                out = self.op("Gather", [out, self.const(np.flatnonzero(kept).astype(np.int64))], axis=1)
        else:
            marker = NONE_TEXT if step.missing_values is None else MISSING_TEXT
            if step.missing_values is not None and not (
                isinstance(step.missing_values, float) and np.isnan(step.missing_values)
            ):
                raise UnsupportedStep(f"text SimpleImputer with missing_values={step.missing_values!r}")
            mask = self.op("Equal", [x, self.const(np.array(marker, dtype=object))])
            fill = self.const(np.array([[str(v) for v in stats]], dtype=object))
            out = self.op("Where", [mask, fill, x], "impute")
        if step.add_indicator:
            if step.indicator_.features != "missing-only" or not numeric:
                raise UnsupportedStep("SimpleImputer indicator other than numeric missing-only")
            features = np.asarray(step.indicator_.features_, dtype=np.int64)
            if len(features):
                flags = self.op("Gather", [self.op("IsNaN", [x]), self.const(features)], axis=1)
                flags = self.op("Cast", [flags], to=TensorProto.FLOAT)
                out = self.op("Concat", [out, flags], "with_indicator", axis=1)
        return out

    def _one_hot(self, step: OneHotEncoder, x: str) -> str:
        if step.drop is not None or getattr(step, "infrequent_categories_", None) is not None:
            raise UnsupportedStep("OneHotEncoder with drop or infrequent categories")
        if step.handle_unknown not in ("ignore", "infrequent_if_exist") and step.handle_unknown != "error":
            raise UnsupportedStep(f"OneHotEncoder handle_unknown={step.handle_unknown!r}")
        blocks = []
        for i, categories in enumerate(step.categories_):
            column = self.op("Gather", [x, self.const(np.array([i], dtype=np.int64))], axis=1)
            labels = [_label(c) for c in categories]
            hits = self.op("Equal", [column, self.const(np.array([labels], dtype=object))])
            blocks.append(self.op("Cast", [hits], "onehot", to=TensorProto.FLOAT))
        return blocks[0] if len(blocks) == 1 else self.op("Concat", blocks, "onehot", axis=1)

    def encode(self, steps: list[Any]) -> str:
        """The float tensor a pipeline's final estimator sees, from its transformer steps."""
        encoded: str | None = None
        for step in steps:
            if isinstance(step, FunctionTransformer) and step.func is add_ratios:
                self.add_ratios()
            elif isinstance(step, ColumnTransformer):
                encoded = self._column_transformer(step)
            else:
                raise UnsupportedStep(f"no ONNX for pipeline step {type(step).__name__}")
        if encoded is None:
            raise UnsupportedStep("a pipeline without a ColumnTransformer")
        return encoded

    def _column_transformer(self, step: ColumnTransformer) -> str:
        outputs = []
        for _, transformer, columns in step.transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            if not isinstance(columns, list | tuple | np.ndarray) or not all(
                isinstance(c, str) for c in columns
            ):
                raise UnsupportedStep("a ColumnTransformer must select its columns by name")
            if len(columns) == 0:
                continue
            x, numeric = self.select(list(columns))
            out = self.transform(transformer, x, numeric)
            if isinstance(transformer, str) and not numeric:
                raise UnsupportedStep("text columns passed through to the estimator")
            outputs.append(out)
        return outputs[0] if len(outputs) == 1 else self.op("Concat", outputs, "encoded", axis=1)
