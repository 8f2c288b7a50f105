"""MLflow tracking and the model registry: one registered model per use case, alias ``champion``."""

from __future__ import annotations

from importlib.metadata import version

import mlflow
import pandas as pd
from mlflow.data.dataset import Dataset
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.base import BaseEstimator

# Pinned from this environment: MLflow's own inference costs seconds per model and lists every module the
# training process happened to import (torch, pytest, ...).
_MODEL_PACKAGES = (
    "scikit-learn",
    "xgboost",
    "skops",
    "cloudpickle",
    "torch",
    "onnxruntime",
    "pandas",
    "numpy",
    "scipy",
)

CHAMPION = "champion"
PREVIOUS = "previous"
CODE_VERSION_TAG = "aimass.code_version"


def ensure_store(tracking_uri: str) -> None:
    """Create the tracking store's tables now: parallel run workers that each find an empty SQLite or
    PostgreSQL store race MLflow's schema migration and one of them fails."""
    MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str) -> str:
    """Experiments get an explicit artifact location so nothing lands in the working directory."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    return client.create_experiment(name, artifact_location=f"{artifact_root.rstrip('/')}/{name}")


def log_candidate(
    *,
    experiment_id: str,
    run_name: str,
    model: BaseEstimator,
    params: dict,
    metrics: dict[str, float],
    example: pd.DataFrame,
    tags: dict[str, str],
    code_version: str,
    dataset: Dataset | None = None,
    serialization: str = "skops",
    trusted_types: list[str] | None = None,
) -> tuple[str, str]:
    """One MLflow run per fitted candidate: params, metrics, the training data set, the model with its
    signature and an input example; returns (run_id, model_uri). ``code_version`` (lib.lineage.code_version)
    is tagged ``aimass.code_version``, which a registered version reaches through its run id (`aimass trace`)."""
    tags = {**tags, CODE_VERSION_TAG: code_version}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics(metrics)
        if dataset is not None:
            mlflow.log_input(dataset, context="training")
        probabilities = model.predict_proba(example)
        # skops loads only its own types and these; each model family names the ones it needs.
        extra = {"skops_trusted_types": sorted(trusted_types or [])}
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, probabilities),
            input_example=example.head(3),
            pyfunc_predict_fn="predict_proba",
            serialization_format=serialization,
            pip_requirements=[f"{name}=={version(name)}" for name in _MODEL_PACKAGES],
            **(extra if serialization == "skops" else {}),
        )
        return run.info.run_id, info.model_uri


def _by_alias(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def champion_version(client: MlflowClient, name: str):
    """The champion's ModelVersion, or None when the use case has none yet."""
    return _by_alias(client, name, CHAMPION)


def previous_version(client: MlflowClient, name: str):
    """The version the champion replaced, or None."""
    return _by_alias(client, name, PREVIOUS)


def load_model(uri: str) -> BaseEstimator:
    return mlflow.sklearn.load_model(uri)


def register_version(
    client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
):
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description=description)
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags, description=description)
    return version


def rollback(client: MlflowClient, name: str) -> tuple[str, str]:
    """Swap ``champion`` and ``previous``; returns (new champion, new previous)."""
    current, previous = champion_version(client, name), previous_version(client, name)
    if previous is None:
        raise LookupError(f"{name}: no version has alias {PREVIOUS!r}, nothing to roll back to")
    if current is None:
        raise LookupError(f"{name}: no champion to roll back from")
    client.set_registered_model_alias(name, CHAMPION, str(previous.version))
    client.set_registered_model_alias(name, PREVIOUS, str(current.version))
    return str(previous.version), str(current.version)


def promote(client: MlflowClient, name: str, version: str) -> str | None:
    """Point ``champion`` at ``version``; the former champion keeps ``previous``. Returns the former."""
    former = champion_version(client, name)
    if former is not None and str(former.version) != str(version):
        client.set_registered_model_alias(name, PREVIOUS, former.version)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    return str(former.version) if former is not None else None


def run_url(
    tracking_uri: str, experiment_id: str, run_id: str, ui_base: str = "http://127.0.0.1:5000"
) -> str:
    """Link into the MLflow UI that ``aimass up`` starts (a tracking server's own URL when it is one)."""
    base = tracking_uri if tracking_uri.startswith("http") else ui_base
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
