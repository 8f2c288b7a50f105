"""ONNX for the final estimators: skl2onnx (linear, forests), onnxmltools (XGBoost), the torch MLP's
weights as Gemm layers, and a compressed member's own ONNX head. Each is spliced into the builder's graph
under its own prefix and yields a float [N, classes] probability tensor."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, compose

from aimass_pipeline.models.compile_graph import GraphBuilder, UnsupportedStep

OPSET = {"": 19, "ai.onnx.ml": 3}
XGBOOST_OPSET = 15  # the highest onnxmltools 1.16 converts XGBoost to; its ops mean the same at 19


def _sklearn_onnx(estimator: Any, n_features: int) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    return convert_sklearn(
        estimator,
        initial_types=[("X", FloatTensorType([None, n_features]))],
        options={id(estimator): {"zipmap": False}},
        target_opset=OPSET,
    )


def _xgboost_onnx(estimator: Any, n_features: int) -> onnx.ModelProto:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    return convert_xgboost(
        estimator, initial_types=[("X", FloatTensorType([None, n_features]))], target_opset=XGBOOST_OPSET
    )


def _splice(builder: GraphBuilder, model: onnx.ModelProto, x: str, prefix: str) -> str:
    """Add a converted model's nodes to the graph, fed by ``x``; returns its probability output."""
    model = compose.add_prefix(model, prefix)
    graph = model.graph
    builder.nodes.append(onnx.helper.make_node("Identity", [x], [graph.input[0].name], name=f"{prefix}in"))
    builder.nodes.extend(graph.node)
    builder.initializers.extend(graph.initializer)
    # Converters emit a label tensor and a float probability tensor (zipmap off); the float one is ours.
    floats = [o.name for o in graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT]
    if len(floats) != 1:
        raise UnsupportedStep(f"expected one probability output, got {[o.name for o in graph.output]}")
    return floats[0]


def _mlp_weights(estimator: Any) -> dict[str, np.ndarray]:
    """The weights the estimator scores with: an int8-quantized module's dequantized ones when compression
    swapped its nn.Linear layers (activations stay float here; the agreement check judges the difference)."""
    module = getattr(estimator, "module_", None)
    quantized = (
        {}
        if module is None
        else {
            name: m
            for name, m in module.named_modules()
            if "quantized" in type(m).__module__ and hasattr(m, "weight")
        }
    )
    if not quantized:
        return {k: np.asarray(v, dtype=np.float32) for k, v in estimator.weights_.items()}
    weights = {}
    for name, layer in quantized.items():
        weights[f"{name}.weight"] = layer.weight().dequantize().numpy().astype(np.float32)
        weights[f"{name}.bias"] = layer.bias().detach().numpy().astype(np.float32)
    return weights


def _mlp(builder: GraphBuilder, estimator: Any, x: str) -> str:
    weights = _mlp_weights(estimator)
    layers = sorted({int(k.split(".")[1]) for k in weights if k.startswith("hidden.")})
    for index in layers:  # Linear -> ReLU (dropout is the identity at inference)
        w, b = weights[f"hidden.{index}.weight"], weights[f"hidden.{index}.bias"]
        x = builder.op("Relu", [builder.op("Gemm", [x, builder.const(w), builder.const(b)], transB=1)])
    logits = builder.op(
        "Gemm", [x, builder.const(weights["out.weight"]), builder.const(weights["out.bias"])], transB=1
    )
    return builder.op("Softmax", [logits], "mlp_proba", axis=1)


def head(builder: GraphBuilder, estimator: Any, x: str, n_features: int, prefix: str) -> str:
    """The probability tensor of ``estimator`` on the encoded features ``x``."""
    kind = type(estimator).__name__
    if kind in ("LogisticRegression", "RandomForestClassifier", "ExtraTreesClassifier"):
        return _splice(builder, _sklearn_onnx(estimator, n_features), x, prefix)
    if kind == "XGBClassifier":
        return _splice(builder, _xgboost_onnx(estimator, n_features), x, prefix)
    if kind == "TorchMLPClassifier" and getattr(estimator, "weights_", None) is not None:
        if any(not k.startswith(("hidden.", "out.")) for k in estimator.weights_):
            raise UnsupportedStep("a torch MLP with layers other than Linear")
        return _mlp(builder, estimator, x)
    if kind == "OnnxHeadClassifier":
        return _splice(builder, onnx.load_from_string(estimator.onnx_model), x, prefix)
    raise UnsupportedStep(f"no ONNX converter for the estimator {kind}")
