"""What guards and observes the serving API: API-key auth, Prometheus metrics, quiet logs for bad input.

The other status codes of a rejected request (413, 415, 400, 422) are ``request_limits``'.
"""

import hmac
import logging
import threading

from pydantic import ValidationError

from aimass_pipeline.serving.request_limits import ASGIApp, Receive, Scope, Send, send_json, validation_status

log = logging.getLogger(__name__)


# Probes must answer without credentials: an orchestrator or Prometheus has no API key.
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})


class RejectedInputWithoutTraceback(logging.Filter):
    """BentoML logs a request that fails validation as an ERROR with a full traceback; a client's typo is
    not a server error, so log one INFO line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            errors = "; ".join(
                f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
            )
            status = validation_status(exc.errors())
            record.msg, record.args = "%s -> %d (%s)", (record.getMessage(), status, errors)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


class ServiceMetrics:
    """The service's Prometheus metrics, one set per worker process.

    Created (and prometheus_client imported) on first use in ``__init__``, never at import: prometheus_client
    chooses in-memory or multi-process storage from ``PROMETHEUS_MULTIPROC_DIR``, which a BentoML worker sets
    only after importing this module (see ``bentoml.metrics``). In memory, the metrics would be invisible to
    ``/metrics``, which reads the multi-process files of every worker.
    """

    _instance: "ServiceMetrics | None" = None
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
        # 1 while the champion alias names a version this worker refused to serve (see served_model.vet).
        self.champion_refused = prometheus_client.Gauge(
            "aimass_champion_refused",
            "1 while the champion alias names a version the service refused; reason: contract or broken.",
            ["use_case", "model_version", "reason"],
            multiprocess_mode="max",
        )
        self.log_dropped = prometheus_client.Counter(
            "aimass_prediction_log_dropped_rows",
            "Predictions dropped from the prediction log because the lake could not be written in time.",
            ["use_case"],
        )

    @classmethod
    def get(cls) -> "ServiceMetrics":
        # Registering a metric name twice raises; the lock guards a service instantiated from two threads.
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


class ApiKeyMiddleware:
    """401 for requests without ``key`` (``AIMASS_API_KEY``); a no-op while there is no key.

    A middleware rather than a check inside ``predict``: it covers every route (the docs and any API added
    later) and rejects before the body is read and validated.
    """

    def __init__(self, app: ASGIApp, key: str | None = None) -> None:
        self.app = app
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
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if (
            self.key is None
            or scope["type"] != "http"  # lifespan events; BentoML serves no websockets here
            or scope.get("path", "").rstrip("/") in OPEN_PATHS
            or self._authorised(scope.get("headers", []))
        ):
            await self.app(scope, receive, send)
            return
        await send_json(
            send, 401, {"error": "missing or invalid API key"}, ((b"www-authenticate", b"Bearer"),)
        )
