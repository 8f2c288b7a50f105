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
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

import bentoml
import mlflow.sklearn
import numpy as np
import pandas as pd
from pydantic import Field
from threadpoolctl import threadpool_limits

from aimass_pipeline.lib.lake import storage_options_from_env
from aimass_pipeline.lib.prediction_log import PredictionLogger
from aimass_pipeline.lib.specs import UseCaseSpec, load_specs
from aimass_pipeline.serving.guards import (
    ApiKeyMiddleware,
    RejectedInputWithoutTraceback,
    ServiceMetrics,
)
from aimass_pipeline.serving.schema import BentoArgs, PredictResponse, record_model

MAX_RECORDS = 10_000
DEFAULT_THRESHOLD = 0.5
DEFAULT_FLUSH_S = 5.0

log = logging.getLogger(__name__)


# The logger of bentoml._internal.server.http_app.log_exception; if BentoML renames it, this is a no-op.
logging.getLogger("bentoml._internal.server.http_app").addFilter(RejectedInputWithoutTraceback())


_ARGS = bentoml.use_arguments(BentoArgs)
USE_CASE = _ARGS.use_case or os.environ.get("AIMASS_USE_CASE") or "credit_risk"
MODEL_TAG = _ARGS.model_tag or os.environ.get("AIMASS_BENTO_MODEL") or f"{USE_CASE}:latest"
# A built bento carries its spec, so it serves the contract it was trained under, also for use cases
# defined outside the package.
SPEC = UseCaseSpec.model_validate(_ARGS.spec) if _ARGS.spec else load_specs()[USE_CASE]
CONTRACT = SPEC.contract
Record = record_model(CONTRACT)


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
        self.metrics = ServiceMetrics.get()
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
