"""`aimass status`: what operators and scripts ask first, per use case: the champion, its bento and the
last run."""

from __future__ import annotations

from typing import Any

from mlflow.tracking import MlflowClient

from aimass_pipeline.core.registry import champion_uri, champion_version
from aimass_pipeline.settings import Settings

STATUS_SCHEMA_VERSION = 1


def _champion(client: Any, use_case: str, primary_metric: str) -> dict | None:
    version = champion_version(client, use_case)
    if version is None:
        return None
    metrics = {k.split(".", 1)[1]: float(v) for k, v in version.tags.items() if k.startswith("holdout.")}
    return {
        "primary_metric": primary_metric,
        "primary_metric_value": metrics.get(primary_metric),
        "registered_model": use_case,
        "version": int(version.version),
        "run_id": version.run_id,
        "family": version.tags.get("aimass.family"),
        "holdout_metrics": metrics,
        "model_uri": champion_uri(use_case),
    }


def collect_status(settings: Settings) -> dict:
    from aimass_pipeline.deployment.bento import latest_bento_tags
    from aimass_pipeline.orchestration.jobs import last_run

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    specs = settings.use_case_specs()
    bentos = latest_bento_tags(settings, list(specs))
    use_cases = {
        name: {
            "champion": _champion(client, name, spec.metric),
            "bento": bentos[name],
            "last_run": last_run(name),
        }
        for name, spec in specs.items()
    }
    return {
        "schema_version": STATUS_SCHEMA_VERSION,
        "environment": settings.env,
        "home": str(settings.home),
        "use_cases": use_cases,
    }
