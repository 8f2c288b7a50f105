"""What operators and scripts ask first: per use case, the champion, its bento and the last run."""

from __future__ import annotations

from dagster import DagsterInstance, RunsFilter
from mlflow.tracking import MlflowClient

from aimass_pipeline.catalog import use_case_specs
from aimass_pipeline.lib.registry import champion_version
from aimass_pipeline.settings import Settings

STATUS_SCHEMA_VERSION = 1


def _champion(client: MlflowClient, use_case: str, primary_metric: str) -> dict | None:
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
        "model_uri": f"models:/{use_case}@champion",
    }


def _last_run(instance: DagsterInstance, use_case: str) -> dict | None:
    runs = instance.get_runs(filters=RunsFilter(tags={"aimass/use_case": use_case}), limit=1)
    if not runs:
        return None
    run = runs[0]
    record = instance.get_run_record_by_id(run.run_id)
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "started_at": record.start_time if record else None,
        "ended_at": record.end_time if record else None,
    }


def collect_status(settings: Settings) -> dict:
    from aimass_pipeline.lib.bento import latest_bento_tags

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    specs = use_case_specs()
    bentos = latest_bento_tags(settings, list(specs))
    with DagsterInstance.get() as instance:
        use_cases = {
            name: {
                "champion": _champion(client, name, spec.metric),
                "bento": bentos[name],
                "last_run": _last_run(instance, name),
            }
            for name, spec in specs.items()
        }
    return {
        "schema_version": STATUS_SCHEMA_VERSION,
        "environment": settings.env,
        "home": str(settings.home),
        "use_cases": use_cases,
    }
