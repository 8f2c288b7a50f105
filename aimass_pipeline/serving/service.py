"""BentoML service answering ``POST /predict`` with one use case's champion model.

Which model it serves is decided at import time, first match wins:

1. the bento arguments ``use_case`` / ``model_tag`` -- ``aimass_pipeline.lib.bento`` passes them to
   ``bentoml.bentos.build``, which stores them in ``bento.yaml``; ``bentoml serve <bento>`` restores them
   before importing this module, so a built bento always serves exactly the model it was built with;
2. the environment variables ``AIMASS_USE_CASE`` / ``AIMASS_BENTO_MODEL`` (serving from source);
3. ``credit_risk`` and ``<use_case>:latest``.

The arguments win over the environment on purpose: a stray ``AIMASS_BENTO_MODEL`` in a server's environment
must not make a bento built from version 3 quietly serve version 5.
"""

import logging
import os
from typing import Annotated, Any, Literal

import bentoml
import mlflow.sklearn
import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from threadpoolctl import threadpool_limits

from aimass_pipeline.lib.contracts import Column, Contract
from aimass_pipeline.lib.specs import UseCaseSpec, load_specs

MAX_RECORDS = 10_000
DEFAULT_THRESHOLD = 0.5


class BentoArgs(BaseModel):
    use_case: str | None = None
    model_tag: str | None = None
    spec: dict[str, Any] | None = None


def _reject_text_and_bool(value: Any) -> Any:
    # pydantic's lax mode would turn "42" into 42 and True into 1; a client sending those has a bug we
    # want to report rather than score.
    if isinstance(value, str | bool):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return value


def _field_type(col: Column) -> Any:
    if col.kind == "category":
        return Literal[col.categories] if col.categories else str
    number = int if col.kind == "int" else float
    return Annotated[number, BeforeValidator(_reject_text_and_bool), Field(ge=col.min, le=col.max)]


def record_model(contract: Contract) -> type[BaseModel]:
    """Pydantic model of one scoring record: the contract's features, nothing else."""
    fields: dict[str, Any] = {}
    for col in contract.features:
        kind = _field_type(col)
        fields[col.name] = (kind | None, None) if col.nullable else (kind, ...)
    return create_model(
        f"{contract.use_case}_record",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        **fields,
    )


class _RejectedInputWithoutTraceback(logging.Filter):
    """BentoML answers a request that fails validation with a 400 naming the field, and also logs it as an
    ERROR with a full traceback; a client's typo is not a server error, so log one INFO line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            errors = "; ".join(
                f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
            )
            record.msg, record.args = "%s -> 400 (%s)", (record.getMessage(), errors)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


# The logger of bentoml._internal.server.http_app.log_exception; if BentoML renames it, this is a no-op.
logging.getLogger("bentoml._internal.server.http_app").addFilter(_RejectedInputWithoutTraceback())


class Prediction(BaseModel):
    probability: float = Field(description="binary: P(positive class); multiclass: P(predicted class)")
    label: str
    probabilities: dict[str, float] | None = Field(default=None, description="multiclass: P(class) per class")


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[Prediction]


_ARGS = bentoml.use_arguments(BentoArgs)
USE_CASE = _ARGS.use_case or os.environ.get("AIMASS_USE_CASE") or "credit_risk"
MODEL_TAG = _ARGS.model_tag or os.environ.get("AIMASS_BENTO_MODEL") or f"{USE_CASE}:latest"
# A built bento carries its spec, so it serves the contract it was trained under, also for use cases
# defined outside the package.
SPEC = UseCaseSpec.model_validate(_ARGS.spec) if _ARGS.spec else load_specs()[USE_CASE]
CONTRACT = SPEC.contract
Record = record_model(CONTRACT)


@bentoml.service(
    logging={"access": {"enabled": False}},
    # Recorded in the bento and its Dockerfile too, so a containerised server inherits them.
    envs=[
        {"name": "BENTOML_DO_NOT_TRACK", "value": "true"},
        {"name": "OMP_NUM_THREADS", "value": "1"},
    ],
)
class ChampionService:
    bento_model = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        stored = self.bento_model
        metadata = stored.info.metadata
        self.model_name = str(metadata.get("registered_model_name", CONTRACT.use_case))
        self.model_version = str(metadata.get("model_version", stored.tag.version))
        self.threshold = float(metadata.get("threshold", DEFAULT_THRESHOLD))
        self.model = mlflow.sklearn.load_model(stored.path_of("mlflow_model"))
        # A model loaded from disk keeps n_jobs=None (= every core); on a small box a single request
        # then fans out over all cores and the latency tail explodes. One thread per inference.
        params = self.model.get_params(deep=True) if hasattr(self.model, "get_params") else {}
        n_jobs = {name: 1 for name in params if name == "n_jobs" or name.endswith("__n_jobs")}
        if n_jobs:
            self.model.set_params(**n_jobs)
        threadpool_limits(limits=1)

    def _frame(self, records: list[BaseModel]) -> pd.DataFrame:
        frame = pd.DataFrame([r.model_dump() for r in records], columns=CONTRACT.feature_names)
        for name in CONTRACT.numeric_features:
            frame[name] = frame[name].astype(float)
        for name in CONTRACT.categorical_features:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        return frame

    @bentoml.api
    def predict(
        self,
        records: Annotated[list[Record], Field(min_length=1, max_length=MAX_RECORDS)],  # type: ignore[valid-type]
    ) -> PredictResponse:
        proba = np.asarray(self.model.predict_proba(self._frame(records)), dtype=float)
        classes = CONTRACT.classes
        if CONTRACT.is_binary:
            predictions = [
                Prediction(probability=float(p), label=classes[1] if p >= self.threshold else classes[0])
                for p in proba[:, 1]
            ]
        else:
            predictions = [
                Prediction(
                    probability=float(row.max()),
                    label=classes[int(row.argmax())],
                    probabilities={c: float(v) for c, v in zip(classes, row, strict=True)},
                )
                for row in proba
            ]
        return PredictResponse(
            model_name=self.model_name, model_version=self.model_version, predictions=predictions
        )
