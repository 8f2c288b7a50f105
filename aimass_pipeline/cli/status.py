"""`aimass status`: what operators and scripts ask first, per use case: the champion, its bento and the
last run. Read from the stores directly (cli/stores.py), so it answers without importing MLflow or Dagster."""

from __future__ import annotations

from aimass_pipeline.cli import stores
from aimass_pipeline.core.retirement import retired
from aimass_pipeline.settings import Settings

STATUS_SCHEMA_VERSION = 1


def champion_uri(name: str) -> str:
    return f"models:/{name}@champion"  # core/registry.py's champion_uri, without importing MLflow


def _champion(settings: Settings, use_case: str, primary_metric: str) -> dict | None:
    version = stores.by_alias(stores.model_versions(settings, use_case), "champion")
    if version is None:
        return None
    tags = version["tags"]
    metrics = {k.split(".", 1)[1]: float(v) for k, v in tags.items() if k.startswith("holdout.")}
    return {
        "primary_metric": primary_metric,
        "primary_metric_value": metrics.get(primary_metric),
        "registered_model": use_case,
        "version": version["version"],
        "run_id": version["run_id"],
        "family": tags.get("aimass.family"),
        "holdout_metrics": metrics,
        "model_uri": champion_uri(use_case),
    }


def _serving(settings: Settings, use_case: str) -> dict:
    """Shadow and canary (share, the test's running statistic), from the lake's serving state."""
    from aimass_pipeline.core.rollout import read_state_at, serving_summary

    return serving_summary(read_state_at(settings.lake_url, settings.storage_options, use_case))


def collect_status(settings: Settings) -> dict:
    specs = settings.use_case_specs()
    bentos = stores.latest_bento_tags(settings, list(specs))
    use_cases = {
        name: {
            "champion": _champion(settings, name, spec.metric),
            "bento": bentos[name],
            "last_run": stores.last_run(settings, name),
            # Additive to schema_version 1: the retirement record (`aimass retire`), null while in service.
            "retired": retired(settings.lake_url, settings.storage_options, name),
            "serving": _serving(settings, name),
        }
        for name, spec in specs.items()
    }
    return {
        "schema_version": STATUS_SCHEMA_VERSION,
        "environment": settings.env,
        "home": str(settings.home),
        "use_cases": use_cases,
    }
