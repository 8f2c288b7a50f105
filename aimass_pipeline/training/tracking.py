"""MLflow tracking of a fitted candidate: one run with its parameters, metrics, data and model."""

from __future__ import annotations

import io
import logging
import pickle
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.metadata import packages_distributions, version

import cloudpickle
import mlflow
import pandas as pd
from mlflow.data.dataset import Dataset
from mlflow.models import infer_signature
from packaging.utils import canonicalize_name
from sklearn.base import BaseEstimator

from aimass_pipeline.core.registry import CODE_VERSION_TAG, sign_logged_model

# The platform's own code is copied into the bento as source, never installed from an index.
_SHIPPED_AS_SOURCE = "aimass_pipeline"


@cache
def _distributions_by_module() -> dict[str, list[str]]:
    return packages_distributions()  # a scan of every installed distribution: ~1 s, once per process


def model_requirements(model: object, serialization: str) -> list[str]:
    """``name==version`` of every distribution that loading ``model`` imports, from this environment: the
    modules its pickle names, what the platform's own modules among them import, and what a class declares
    it imports lazily (``runtime_packages``, e.g. onnxruntime). MLflow's own inference would list whatever
    the training process had imported (pytest, dagster, ...) and costs seconds per model."""
    tops = {"sklearn", "skops" if serialization == "skops" else "cloudpickle"}

    class _Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            found = super().find_class(module, name)
            tops.add(module.split(".")[0])
            tops.update(getattr(found, "runtime_packages", ()))
            if module.split(".")[0] == _SHIPPED_AS_SOURCE:
                for value in vars(sys.modules[module]).values():
                    origin = (
                        value.__name__
                        if isinstance(value, types.ModuleType)
                        else getattr(value, "__module__", None)
                    )
                    if isinstance(origin, str):
                        tops.add(origin.split(".")[0])
            return found

    # Our own freshly pickled bytes: unpickling them only reveals which classes the model is made of.
    _Recorder(io.BytesIO(cloudpickle.dumps(model))).load()
    by_module = _distributions_by_module()
    names = {
        canonicalize_name(dist): dist
        for top in tops
        for dist in by_module.get(top, [])
        if canonicalize_name(dist) != canonicalize_name(_SHIPPED_AS_SOURCE)
    }
    return [f"{names[key]}=={version(names[key])}" for key in sorted(names)]


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
        with _signed_pickle_notice_dropped(serialization):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(example, probabilities),
                input_example=example.head(3),
                pyfunc_predict_fn="predict_proba",
                serialization_format=serialization,
                pip_requirements=model_requirements(model, serialization),
                **(extra if serialization == "skops" else {}),
            )
        sign_logged_model(info.model_id, info.model_uri, signing_key)
        return run.info.run_id, info.model_uri


class _SignedPickleNotice(logging.Filter):
    """MLflow warns on every pickled sklearn model that unpickling can run code. Ours are HMAC-signed when
    logged and verified before any load (core/signing.py), the mitigation the warning asks for; only a
    variant skops cannot store (an ONNX head, a quantised module) is pickled at all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pickle or cloudpickle format" not in record.getMessage()


@contextmanager
def _signed_pickle_notice_dropped(serialization: str) -> Iterator[None]:
    notice = _SignedPickleNotice()
    logger = logging.getLogger("mlflow.sklearn")
    if serialization != "skops":
        logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)
