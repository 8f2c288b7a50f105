"""MLflow tracking and the model registry: one registered model per use case, alias ``champion``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.scoring import DEFAULT_THRESHOLD

CHAMPION = "champion"
PREVIOUS = "previous"
CODE_VERSION_TAG = "aimass.code_version"
# A registered version's decision threshold on P(positive class). The documented rule: an untagged version
# (registered before thresholds were tuned, or by hand) uses DEFAULT_THRESHOLD; a tag that is not a number in
# [0, 1] is an error, never the default.
THRESHOLD_TAG = "threshold"
# What the registry answers for a missing model (RESOURCE_DOES_NOT_EXIST) or alias (INVALID_PARAMETER_VALUE);
# anything else (a database down, ...) is not "no champion" and propagates.
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"


def registry_client(tracking_uri: str) -> MlflowClient:
    """A client of the registry at ``tracking_uri`` that refuses a SQLite file that is not there: SQLAlchemy
    would create an empty one, and the registry would then look empty rather than unreachable."""
    path = _sqlite_path(tracking_uri)
    if path is not None and not path.exists():
        raise FileNotFoundError(f"MLflow tracking database {path} does not exist")
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _sqlite_path(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(unquote(tracking_uri[len(prefix) :].split("?", 1)[0]))


class MalformedThresholdError(ValueError):
    """A registered version's ``threshold`` tag is not a number in [0, 1]."""


def threshold_of(tags: dict[str, str], version: str) -> float:
    """The decision threshold of ``version`` (e.g. ``"credit_risk version 3"``, for the error): its tag, or
    DEFAULT_THRESHOLD when it has none; a malformed tag raises MalformedThresholdError naming both."""
    if THRESHOLD_TAG not in tags:
        return DEFAULT_THRESHOLD
    raw = tags[THRESHOLD_TAG]
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise MalformedThresholdError(
            f"{version}: tag {THRESHOLD_TAG!r} is {raw!r}, not a number in [0, 1]; fix it with "
            f"MlflowClient().set_model_version_tag(name, version, {THRESHOLD_TAG!r}, <value>)"
        )
    return value


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


def _by_alias(client: MlflowClient, name: str, alias: str) -> Any:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in _MISSING:
            return None
        raise


def champion_version(client: MlflowClient, name: str) -> Any:
    """The champion's ModelVersion, or None when the use case has none yet: the one champion lookup.
    Raises what the registry raises when it cannot be reached."""
    return _by_alias(client, name, CHAMPION)


def previous_version(client: MlflowClient, name: str) -> Any:
    """The version the champion replaced, or None."""
    return _by_alias(client, name, PREVIOUS)


def load_model(uri: str) -> Any:
    """A registered model as the estimator it was logged as (``predict_proba`` included)."""
    import mlflow.sklearn

    return mlflow.sklearn.load_model(uri)


def register_version(
    client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
) -> Any:
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
