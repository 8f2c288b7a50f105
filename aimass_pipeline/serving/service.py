"""BentoML service answering ``POST /predict`` and ``POST /predict_batch`` with one use case's champion.

What it answers, how it picks its model and how it is operated: the package docstring (``serving/__init__.py``)."""

import asyncio
import gc
import logging
import os
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import anyio.to_thread
import bentoml
import numpy as np
import pandas as pd
from _bentoml_impl.serde import JSONSerde  # noqa: PLC2701 - the serde BentoML parses JSON bodies with
from _bentoml_sdk.io_models import IOMixin  # noqa: PLC2701 - the hook BentoML parses a request through
from bentoml._internal.context import server_context  # noqa: PLC2701 - BentoML exposes it nowhere else
from pydantic import Field, create_model
from starlette.requests import Request
from threadpoolctl import threadpool_limits

from aimass_pipeline.core.images import image_spec_of
from aimass_pipeline.core.scoring import predicted_classes
from aimass_pipeline.models.compile import CompiledModel
from aimass_pipeline.serving.champion import ChampionFollower, ServedModel, load_served, single_threaded
from aimass_pipeline.serving.compiled import compiled_served
from aimass_pipeline.serving.config import SERVICE_CONFIG
from aimass_pipeline.serving.guards import ApiKeyMiddleware, RejectedInputWithoutTraceback, ServiceMetrics
from aimass_pipeline.serving.images import IMAGE_PATH, ImageRequestMiddleware
from aimass_pipeline.serving.lifecycle import RetiredMiddleware, swap_recorder
from aimass_pipeline.serving.openapi import OpenApiMiddleware
from aimass_pipeline.serving.privacy import pii_guard
from aimass_pipeline.serving.request_limits import RequestGuardMiddleware
from aimass_pipeline.serving.rollout import close_arms, rollout_arms
from aimass_pipeline.serving.schema import (
    BatchPrediction,
    BentoArgs,
    PredictResponse,
    example_record,
    record_model,
    request_model,
)
from aimass_pipeline.serving.served_model import RefusalHeaderMiddleware, model_frame, refusal_gauge
from aimass_pipeline.serving.startup import (
    bento_threshold,
    prediction_logger,
    require_model_stores,
    resolve_startup,
)
from aimass_pipeline.settings import load_serving_settings

MAX_RECORDS = 10_000
# /predict_batch: one request fits in one adaptive batch; bigger requests belong on /predict.
MAX_BATCH_RECORDS = 1_000
BATCH_MAX_LATENCY_MS = 1_000
# /predict scores off the event loop in this many threads, one per CPU the process may use: a 10,000-record
# request scored inline held the loop ~0.6 s, and /healthz with it.
GIL_SWITCH_S = 0.001
SCORING_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

log = logging.getLogger(__name__)
# BentoML configures its own loggers only; without this the service's INFO lines (champion swaps, the
# prediction log's target) would be dropped.
logging.getLogger("aimass_pipeline").setLevel(logging.INFO)


# The logger of bentoml._internal.server.http_app.log_exception; if BentoML renames it, this is a no-op.
logging.getLogger("bentoml._internal.server.http_app").addFilter(RejectedInputWithoutTraceback())

# Importing this module is the service's start: BentoML builds the API from the contract when it imports it.
STARTUP = resolve_startup(bentoml.use_arguments(BentoArgs), load_serving_settings())
SETTINGS = STARTUP.settings
CONTRACT = STARTUP.spec.contract
Record = record_model(CONTRACT)


class _ParsedOffTheLoop(IOMixin):
    """Validate a JSON body in a worker thread: 10,000 records take 0.1-0.15 s of pydantic, which BentoML
    would otherwise spend on the event loop, stalling /healthz and every other request."""

    @classmethod
    async def from_http_request(cls, request: Request, serde: Any) -> Any:
        if type(serde) is not JSONSerde:
            return await super().from_http_request(request, serde)
        body = await request.body()
        return await anyio.to_thread.run_sync(cls.model_validate_json, body or b"{}")


PredictRequest = create_model(
    "PredictRequest",
    __base__=(_ParsedOffTheLoop, request_model("PredictRequest", CONTRACT, Record, MAX_RECORDS)),
)
PredictBatchRequest = request_model("PredictBatchRequest", CONTRACT, Record, MAX_BATCH_RECORDS)


if server_context.worker_index is None:
    # The `bentoml serve` process itself imports this module before it starts any worker: failing here
    # exits the server non-zero, whereas a worker failing in __init__ is restarted by BentoML forever.
    require_model_stores(STARTUP)


@bentoml.service(**SERVICE_CONFIG)
class ChampionService:
    bento_model = bentoml.models.BentoModel(STARTUP.model_tag)

    def __init__(self) -> None:
        stored = require_model_stores(STARTUP)
        metadata = stored.info.metadata
        initial = self._prepare(
            ServedModel(
                model=single_threaded(load_served(stored.path_of("mlflow_model"), SETTINGS.signing_key)),
                name=str(metadata.get("registered_model_name", CONTRACT.use_case)),
                version=str(metadata.get("model_version", stored.tag.version)),
                threshold=bento_threshold(stored),
            )
        )
        threadpool_limits(limits=1)
        self.scoring = ThreadPoolExecutor(max_workers=SCORING_THREADS, thread_name_prefix="aimass-score")
        # A scoring thread holds the GIL up to the switch interval each time the event loop asks for it, and a
        # probe asks a dozen times (it hops to a thread too): 5 ms by default put /healthz at 100-130 ms
        # during a 10k-record request.
        sys.setswitchinterval(GIL_SWITCH_S)
        self.metrics = ServiceMetrics.get()
        dropped = self.metrics.log_dropped.labels(CONTRACT.use_case)
        self.prediction_log = prediction_logger(SETTINGS, CONTRACT.use_case, dropped.inc)
        self.pii = pii_guard(CONTRACT, SETTINGS.pii_key)
        # The imports leave ~300k long-lived objects that every full garbage collection walks with the GIL
        # held (0.1-1 s here), stalling every request in flight; they live as long as the process.
        gc.collect()
        gc.freeze()
        # rel-gate (issue 11 fault 3): every new champion is vetted against the served schema first.
        self.follower = ChampionFollower(
            initial,
            SETTINGS.tracking_uri,
            SETTINGS.poll_s,
            signing_key=SETTINGS.signing_key,
            offered=CONTRACT,
            record=example_record(CONTRACT),
            on_refuse=refusal_gauge(self.metrics.champion_refused, CONTRACT.use_case),
            prepare=self._prepare,
            on_swap=swap_recorder(
                SETTINGS.lake_url, SETTINGS.storage_options, CONTRACT.use_case, SETTINGS.audit_pg_url
            ),
        )
        # issue 15: shadow and canary versions named in the lake's serving state (serving/arms.py).
        arm_args = (initial.name, self._prepare, CONTRACT, example_record(CONTRACT), dropped.inc)
        self.arms = rollout_arms(SETTINGS, CONTRACT.use_case, *arm_args)
        self.arms.start(self._score)
        if STARTUP.follows_champion:
            self.follower.start()
        else:
            log.warning(
                "serving %s version %s without following its champion (AIMASS_CHAMPION_POLL_S=%s, "
                "MLFLOW_TRACKING_URI %s)",
                initial.name,
                initial.version,
                SETTINGS.poll_s,
                "set" if SETTINGS.tracking_uri else "unset",
            )

    @staticmethod
    def _prepare(served: ServedModel) -> ServedModel:
        # One ONNX graph for preprocessing and every member: 64 ms -> ~1 ms a row for the credit ensemble.
        return compiled_served(served, CONTRACT) if SETTINGS.compiled else served

    @bentoml.on_shutdown
    def close(self) -> None:
        # Flushes what is buffered, so a clean stop (SIGTERM) loses no predictions.
        self.follower.stop()
        close_arms(self.arms)
        self.scoring.shutdown(wait=True)  # requests being scored still reach the prediction log
        if self.prediction_log is not None:
            self.prediction_log.close()

    def _frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        # All numeric columns as one float64 block (None -> NaN) built in one call: converting and assigning
        # them one column at a time cost more CPU than the prediction itself (30 columns: ~10 ms vs 0.2 ms).
        numeric = CONTRACT.numeric_features
        values = np.array([[row[name] for name in numeric] for row in rows], dtype=float)
        frame = pd.DataFrame(values.reshape(len(rows), len(numeric)), columns=numeric)
        objects = [*CONTRACT.categorical_features, *CONTRACT.text_features]
        for name in objects:
            frame[name] = pd.Series([row[name] for row in rows], dtype=object)
        return frame[CONTRACT.feature_names] if objects else frame

    def _score(
        self, served: ServedModel, rows: list[dict[str, Any]], request_id: str, role: str = "served"
    ) -> list[dict[str, Any]]:
        rows = self.pii(rows)
        if isinstance(served.model, CompiledModel):  # straight from the records (its columns), no DataFrame
            proba = served.model.predict_rows(rows)
        else:
            frame = model_frame(served, self._frame(rows))  # the columns the served version was trained on
            proba = np.asarray(served.model.predict_proba(frame), dtype=float)
        classes = CONTRACT.classes
        labels = [classes[k] for k in predicted_classes(proba, served.threshold)]
        # Plain dicts, not Prediction objects: the prediction log keeps them as they are, and pydantic
        # validates them into the response once.
        if CONTRACT.is_binary:
            outputs = [
                {"prediction_id": uuid.uuid4().hex, "probability": float(p), "label": label}
                for p, label in zip(proba[:, 1], labels, strict=True)
            ]
        else:
            outputs = [
                {
                    "prediction_id": uuid.uuid4().hex,
                    "probability": float(row.max()),
                    "label": label,
                    "probabilities": {c: float(v) for c, v in zip(classes, row, strict=True)},
                }
                for row, label in zip(proba, labels, strict=True)
            ]
        if (
            role == "shadow"
        ):  # neither counted as served nor logged here: the shadow log has it (serving/arms.py)
            return outputs
        self._observe(served, outputs)
        if self.prediction_log is not None:
            self.prediction_log.log(
                rows, outputs, served.name, served.version, request_id=request_id, role=role
            )
        return outputs

    @bentoml.api(input_spec=PredictRequest)
    async def predict(
        self,
        records: Annotated[list[Record], Field(min_length=1, max_length=MAX_RECORDS)],  # type: ignore[valid-type]
    ) -> PredictResponse:
        """Score the records in one call: for big requests and low concurrency."""
        # Scored, logged and validated into the answer in a thread: the event loop stays free for the probes
        # and the other requests while a big request is scored.
        return await asyncio.get_running_loop().run_in_executor(self.scoring, self._predict, records)

    def _predict(self, records: list[Any]) -> PredictResponse:
        request_id = uuid.uuid4().hex
        # The champion read once (the whole request uses one model), or the canary the entity is routed to.
        served, outputs = self.arms.answer(
            self.follower.current, [dict(r.__dict__) for r in records], request_id, self._score
        )
        return PredictResponse(
            request_id=request_id,
            model_name=served.name,
            model_version=served.version,
            predictions=outputs,  # type: ignore[arg-type]
        )

    @bentoml.api(
        input_spec=PredictBatchRequest,
        batchable=True,
        max_batch_size=MAX_BATCH_RECORDS,
        max_latency_ms=BATCH_MAX_LATENCY_MS,
    )
    def predict_batch(
        self,
        records: Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH_RECORDS)],  # type: ignore[valid-type]
    ) -> list[BatchPrediction]:
        """Score the records together with those of concurrent requests (adaptive batching): for many
        concurrent small requests. The answer is one prediction per record, each naming its model."""
        served = self.follower.current
        # The request_id of the prediction log names the server-side batch here, not a client's request.
        outputs = self._score(served, [dict(r.__dict__) for r in records], uuid.uuid4().hex)
        return [
            BatchPrediction(model_name=served.name, model_version=served.version, **out)  # type: ignore[arg-type]
            for out in outputs
        ]

    def _observe(self, served: ServedModel, outputs: list[dict[str, Any]]) -> None:
        for label, n in Counter(out["label"] for out in outputs).items():
            self.metrics.predictions.labels(CONTRACT.use_case, served.version, label).inc(n)
        histogram = self.metrics.probability.labels(CONTRACT.use_case, served.version)
        for out in outputs:
            histogram.observe(out["probability"])


# Outermost first: the key is checked before the body is read.
ChampionService.add_asgi_middleware(ApiKeyMiddleware, key=SETTINGS.api_key)
# POST /predict_image (multipart or base64 JSON) becomes a one-record /predict: serving/images.py.
ChampionService.add_asgi_middleware(
    ImageRequestMiddleware,
    spec=image_spec_of(CONTRACT),
    feature_names=CONTRACT.feature_names,
    max_body_bytes=SETTINGS.max_body_bytes,
)
API_PATHS = ("/predict", "/predict_batch")
ChampionService.add_asgi_middleware(
    RequestGuardMiddleware, max_body_bytes=SETTINGS.max_body_bytes, api_paths=API_PATHS
)
ChampionService.add_asgi_middleware(RefusalHeaderMiddleware)
ChampionService.add_asgi_middleware(RetiredMiddleware, use_case=CONTRACT.use_case, lake_url=SETTINGS.lake_url, storage_options=SETTINGS.storage_options, api_paths=API_PATHS)  # fmt: skip
IMAGE = IMAGE_PATH if image_spec_of(CONTRACT) else None
ChampionService.add_asgi_middleware(OpenApiMiddleware, api_paths=API_PATHS, secured=bool(SETTINGS.api_key), image_path=IMAGE)  # fmt: skip
