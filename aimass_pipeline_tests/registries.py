"""A small real MLflow registry for the tests that move aliases: built once per module (MLflow's schema
migration takes seconds), copied per test."""

from pathlib import Path

from mlflow.tracking import MlflowClient

from aimass_pipeline.core.registry import ensure_store


def small_registry(path: Path, name: str, tags: list[dict[str, str]], champion: str | None = None) -> Path:
    """A SQLite registry at ``path``: one version of ``name`` per entry of ``tags`` (its tags), version
    ``champion`` (if any) aliased champion."""
    uri = f"sqlite:///{path}"
    ensure_store(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(name)
    for version_tags in tags:
        client.create_model_version(name, "unused-source", tags=version_tags)
    if champion is not None:
        client.set_registered_model_alias(name, "champion", champion)
    return path
