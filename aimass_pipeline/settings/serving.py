"""What the served bento reads from its environment: ships in the bento with ``core/``."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


def storage_options() -> dict:
    """s3fs options for an S3-compatible store (endpoint, keys, region); {} for AWS defaults."""
    endpoint = os.environ.get("AIMASS_S3_ENDPOINT_URL")
    if not endpoint:
        return {}
    return {
        "key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "secret": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "client_kwargs": {"endpoint_url": endpoint, "region_name": os.environ.get("AWS_REGION", "us-east-1")},
    }


@dataclass(frozen=True)
class ServingSettings:
    """What a running champion service reads from its environment (``bentoml serve`` sets none of it).

    ``use_case`` and ``model_tag`` only matter when serving from source: a built bento's own arguments win.
    """

    use_case: str | None
    model_tag: str | None
    tracking_uri: str
    poll_s: float
    startup_retries: int
    bentoml_home: str
    lake_url: str | None
    prediction_log: bool
    flush_s: float
    storage_options: dict
    api_key: str | None
    max_body_bytes: int
    signing_key: str | None
    pii_key: str | None = None  # AIMASS_PII_KEY: PII fields of requests are pseudonymised with it
    compiled: bool = True  # serve the champion compiled into one ONNX graph when it compiles and agrees
    audit_pg_url: str | None = None  # prod: where the audit trail's second copy lives (the service's swaps)


def load_serving_settings() -> ServingSettings:
    """``AIMASS_CHAMPION_POLL_S`` (default 10; 0 stops following the champion), ``AIMASS_STARTUP_RETRIES``
    (3), ``AIMASS_LAKE_URL`` with ``AIMASS_PREDICTION_LOG`` (``off``) and ``AIMASS_PREDICTION_FLUSH_S`` (5),
    ``AIMASS_API_KEY``, ``AIMASS_MAX_BODY_BYTES`` (8 MiB), ``MLFLOW_TRACKING_URI``, ``BENTOML_HOME``,
    ``AIMASS_SIGNING_KEY`` (the models are verified with it; ``aimass serve`` passes the platform's),
    ``AIMASS_SERVE_COMPILED`` (``off`` serves the pipeline as logged, not compiled)."""
    return ServingSettings(
        use_case=os.environ.get("AIMASS_USE_CASE") or None,
        model_tag=os.environ.get("AIMASS_BENTO_MODEL") or None,
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", ""),
        poll_s=float(os.environ.get("AIMASS_CHAMPION_POLL_S") or 10.0),
        startup_retries=int(os.environ.get("AIMASS_STARTUP_RETRIES") or 3),
        bentoml_home=os.environ.get("BENTOML_HOME", "~/bentoml"),
        lake_url=os.environ.get("AIMASS_LAKE_URL") or None,
        prediction_log=os.environ.get("AIMASS_PREDICTION_LOG", "").strip().lower() != "off",
        flush_s=float(os.environ.get("AIMASS_PREDICTION_FLUSH_S") or 5.0),
        storage_options=storage_options(),
        api_key=os.environ.get("AIMASS_API_KEY") or None,
        max_body_bytes=int(os.environ.get("AIMASS_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES),
        signing_key=os.environ.get("AIMASS_SIGNING_KEY") or None,
        pii_key=os.environ.get("AIMASS_PII_KEY") or None,
        compiled=os.environ.get("AIMASS_SERVE_COMPILED", "").strip().lower() != "off",
        audit_pg_url=_audit_pg_url(),
    )


def _audit_pg_url() -> str | None:
    """Under prod with the instance's database named (``AIMASS_PG_*``): the audit trail's PostgreSQL copy."""
    from urllib.parse import quote

    env = os.environ
    if (
        env.get("AIMASS_ENV") != "prod"
        or not env.get("AIMASS_PG_USER")
        or not env.get("AIMASS_PG_DAGSTER_DB")
    ):
        return None
    password = env.get("AIMASS_PG_PASSWORD", "")
    auth = quote(env["AIMASS_PG_USER"], safe="") + (f":{quote(password, safe='')}" if password else "")
    host, port = env.get("AIMASS_PG_HOST", "127.0.0.1"), env.get("AIMASS_PG_PORT", "5432")
    return f"postgresql://{auth}@{host}:{port}/{env['AIMASS_PG_DAGSTER_DB']}"
