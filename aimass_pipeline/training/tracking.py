"""MLflow tracking of a fitted candidate: one run with its parameters, metrics, data and model."""

from __future__ import annotations

from importlib.metadata import version

import mlflow
import pandas as pd
from mlflow.data.dataset import Dataset
from mlflow.models import infer_signature
from sklearn.base import BaseEstimator

from aimass_pipeline.core.registry import CODE_VERSION_TAG, sign_logged_model

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
    signing_key: str | None,
    dataset: Dataset | None = None,
    serialization: str = "skops",
    trusted_types: list[str] | None = None,
) -> tuple[str, str]:
    """One MLflow run per fitted candidate: params, metrics, the training data set, the model with its
    signature and an input example; returns (run_id, model_uri). ``code_version`` (core.lineage.code_version)
    is tagged ``aimass.code_version``, which a registered version reaches through its run id (`aimass trace`).
    The stored model is signed with ``signing_key``: a cloudpickled variant is only loaded once verified."""
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
        sign_logged_model(info.model_id, info.model_uri, signing_key)
        return run.info.run_id, info.model_uri
