"""BentoML service answering ``POST /predict`` with one use case's champion model.

Which model it serves is decided at import time, first match wins:

1. the bento arguments ``use_case`` / ``model_tag`` -- ``aimass_pipeline.lib.bento`` passes them to
   ``bentoml.bentos.build``, which stores them in ``bento.yaml``; ``bentoml serve <bento>`` restores them
   before importing this module, so a built bento always serves exactly the model it was built with;
2. the environment variables ``AIMASS_USE_CASE`` / ``AIMASS_BENTO_MODEL`` (serving from source);
3. ``credit_risk`` and ``<use_case>:latest``.

The arguments win over the environment on purpose: a stray ``AIMASS_BENTO_MODEL`` in a server's environment
must not make a bento built from version 3 quietly serve version 5.

Operations, all read from the server's environment:

- every response carries a ``request_id`` and every prediction a ``prediction_id`` (uuid4 hex), the keys to
  join later outcomes to what was predicted;
- with ``AIMASS_LAKE_URL`` set, predictions are written to ``<lake>/predictions/<use_case>/`` by
  ``aimass_pipeline.lib.prediction_log`` every ``AIMASS_PREDICTION_FLUSH_S`` seconds (default 5);
  ``AIMASS_PREDICTION_LOG=off`` turns that off;
- ``/metrics`` (BentoML's Prometheus endpoint) also shows ``aimass_predictions_total`` (by use case, model
  version and label), ``aimass_prediction_probability`` (histogram) and
  ``aimass_prediction_log_dropped_rows_total``;
- with ``AIMASS_API_KEY`` set, every route except the health and metrics probes needs
  ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, else 401.
"""

import atexit
import hmac
import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

import bentoml
import mlflow.sklearn
import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from threadpoolctl import threadpool_limits

from aimass_pipeline.lib.contracts import Column, Contract
from aimass_pipeline.lib.prediction_log import PredictionLogger, storage_options_from_env
from aimass_pipeline.lib.specs import UseCaseSpec, load_specs

MAX_RECORDS = 10_000
DEFAULT_THRESHOLD = 0.5
DEFAULT_FLUSH_S = 5.0
# Probes must answer without credentials: an orchestrator or Prometheus has no API key.
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})

log = logging.getLogger(__name__)


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
    prediction_id: str = Field(description="uuid4 hex, the key of this prediction in the prediction log")
    probability: float = Field(description="binary: P(positive class); multiclass: P(predicted class)")
    label: str
    probabilities: dict[str, float] | None = Field(default=None, description="multiclass: P(class) per class")


class PredictResponse(BaseModel):
    request_id: str = Field(description="uuid4 hex, shared by the predictions of this request")
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


class _Metrics:
    """The service's Prometheus metrics, one set per worker process.

    Created (and prometheus_client imported) on first use in ``__init__``, never at import: prometheus_client
    chooses in-memory or multi-process storage from ``PROMETHEUS_MULTIPROC_DIR``, which a BentoML worker sets
    only after importing this module (see ``bentoml.metrics``). In memory, the metrics would be invisible to
    ``/metrics``, which reads the multi-process files of every worker.
    """

    _instance: "_Metrics | None" = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import prometheus_client

        self.predictions = prometheus_client.Counter(
            "aimass_predictions", "Predictions served.", ["use_case", "model_version", "label"]
        )
        self.probability = prometheus_client.Histogram(
            "aimass_prediction_probability",
            "Predicted probability (binary: of the positive class; multiclass: of the predicted class).",
            ["use_case", "model_version"],
            buckets=[round(0.1 * i, 1) for i in range(1, 11)],
        )
        self.log_dropped = prometheus_client.Counter(
            "aimass_prediction_log_dropped_rows",
            "Predictions dropped from the prediction log because the lake could not be written in time.",
            ["use_case"],
        )

    @classmethod
    def get(cls) -> "_Metrics":
        # Registering a metric name twice raises; the lock guards a service instantiated from two threads.
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class ApiKeyMiddleware:
    """401 for requests without the key in ``AIMASS_API_KEY``; a no-op while that variable is unset or empty.

    A middleware rather than a check inside ``predict``: it covers every route (the docs and any API added
    later) and rejects before the body is read and validated.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        key = os.environ.get("AIMASS_API_KEY", "")
        self.key = key.encode() if key else None

    def _authorised(self, headers: list[tuple[bytes, bytes]]) -> bool:
        assert self.key is not None
        ok = False
        for name, value in headers:
            candidate: bytes | None = None
            if name == b"x-api-key":
                candidate = value.strip()
            elif name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    candidate = token.strip()
            # compare_digest: the time taken must not tell an attacker how much of a guess was right.
            if candidate is not None and hmac.compare_digest(candidate, self.key):
                ok = True
        return ok

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if (
            self.key is None
            or scope["type"] != "http"  # lifespan events; BentoML serves no websockets here
            or scope.get("path", "").rstrip("/") in OPEN_PATHS
            or self._authorised(scope.get("headers", []))
        ):
            await self.app(scope, receive, send)
            return
        body = b'{"error":"missing or invalid API key"}'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _prediction_logger(use_case: str, on_dropped: Callable[[int], None]) -> PredictionLogger | None:
    lake_url = os.environ.get("AIMASS_LAKE_URL")
    if not lake_url or os.environ.get("AIMASS_PREDICTION_LOG", "").strip().lower() == "off":
        log.info("prediction log off (AIMASS_LAKE_URL unset or AIMASS_PREDICTION_LOG=off)")
        return None
    flush_s = float(os.environ.get("AIMASS_PREDICTION_FLUSH_S") or DEFAULT_FLUSH_S)
    logger = PredictionLogger(
        lake_url,
        use_case,
        flush_interval_s=flush_s,
        storage_options=storage_options_from_env(),
        on_dropped=on_dropped,
    )
    # on_shutdown below is the normal path; atexit covers an interpreter exit that skips it. close() is
    # idempotent.
    atexit.register(logger.close)
    log.info("prediction log: %s every %.1f s", logger.fs.unstrip_protocol(logger.base), flush_s)
    return logger


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
        self.metrics = _Metrics.get()
        dropped = self.metrics.log_dropped.labels(CONTRACT.use_case)
        self.prediction_log = _prediction_logger(CONTRACT.use_case, dropped.inc)

    @bentoml.on_shutdown
    def close_prediction_log(self) -> None:
        # Flushes what is buffered, so a clean stop (SIGTERM) loses no predictions.
        if self.prediction_log is not None:
            self.prediction_log.close()

    def _frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=CONTRACT.feature_names)
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
        rows = [r.model_dump() for r in records]
        proba = np.asarray(self.model.predict_proba(self._frame(rows)), dtype=float)
        classes = CONTRACT.classes
        # Plain dicts, not Prediction objects: the prediction log keeps them as they are, and pydantic
        # validates them into the response once.
        if CONTRACT.is_binary:
            outputs = [
                {
                    "prediction_id": uuid.uuid4().hex,
                    "probability": float(p),
                    "label": classes[1] if p >= self.threshold else classes[0],
                }
                for p in proba[:, 1]
            ]
        else:
            outputs = [
                {
                    "prediction_id": uuid.uuid4().hex,
                    "probability": float(row.max()),
                    "label": classes[int(row.argmax())],
                    "probabilities": {c: float(v) for c, v in zip(classes, row, strict=True)},
                }
                for row in proba
            ]
        request_id = uuid.uuid4().hex
        self._observe(outputs)
        if self.prediction_log is not None:
            self.prediction_log.log(rows, outputs, self.model_name, self.model_version, request_id=request_id)
        return PredictResponse(
            request_id=request_id,
            model_name=self.model_name,
            model_version=self.model_version,
            predictions=outputs,  # type: ignore[arg-type]
        )

    def _observe(self, outputs: list[dict[str, Any]]) -> None:
        for label, n in Counter(out["label"] for out in outputs).items():
            self.metrics.predictions.labels(CONTRACT.use_case, self.model_version, label).inc(n)
        histogram = self.metrics.probability.labels(CONTRACT.use_case, self.model_version)
        for out in outputs:
            histogram.observe(out["probability"])


ChampionService.add_asgi_middleware(ApiKeyMiddleware)
