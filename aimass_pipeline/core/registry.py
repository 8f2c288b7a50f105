"""MLflow tracking and the model registry: one registered model per use case, alias ``champion``."""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

# Re-exported: training, evaluation and the CLI have always found them here.
from aimass_pipeline.core.aliases import (  # noqa: F401
    CHAMPION,
    PREVIOUS,
    PromotionConflict,
    compare_and_set,
    rollback_move,
)
from aimass_pipeline.core.mlflow_names import CODE_VERSION_TAG, redacted, run_url  # noqa: F401
from aimass_pipeline.core.scoring import DEFAULT_THRESHOLD
from aimass_pipeline.core.signing import UntrustedArtifactError, sign_directory, verify_directory

_log = logging.getLogger(__name__)

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


def sign_logged_model(model_id: str, model_uri: str, signing_key: str | None) -> None:
    """Sign what MLflow stored for a logged model, as stored: every file's sha256 under an HMAC, uploaded
    beside them as ``aimass_signature.json``. ``load_model`` refuses the model without it."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="aimass-sign-") as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        signature = sign_directory(folder, signing_key)
        MlflowClient().log_model_artifact(model_id, str(signature))


def _check_skops_types(folder: Path, trusted_types: Collection[str], uri: str) -> None:
    # The MLmodel file names the types skops may build; only the code's own list is honoured.
    import yaml

    flavor = (yaml.safe_load((folder / "MLmodel").read_text()) or {}).get("flavors", {}).get("sklearn", {})
    if flavor.get("serialization_format") != "skops":
        return
    extra = sorted(set(flavor.get("skops_trusted_types") or []) - set(trusted_types))
    if extra:
        raise UntrustedArtifactError(
            f"{uri}: its MLmodel asks skops to trust {extra}, not in the code's list"
        )


def load_model(uri: str, signing_key: str | None, trusted_types: Collection[str]) -> Any:
    """A registered model as the estimator it was logged as (``predict_proba`` included), loaded only once
    every file of it matches its signature and skops is asked to trust nothing beyond ``trusted_types``.
    ``uri``: a ``models:/`` URI, an artifact URI or a local model directory (the Bento model store's)."""
    import mlflow.artifacts
    import mlflow.sklearn

    with tempfile.TemporaryDirectory(prefix="aimass-model-") as tmp:
        local = Path(uri)
        if local.is_dir():
            # A private copy: files swapped between the check and the load must not be what is loaded.
            folder = Path(shutil.copytree(local, Path(tmp) / "model"))
        else:
            folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        verify_directory(folder, signing_key, uri)
        _check_skops_types(folder, trusted_types, uri)
        return mlflow.sklearn.load_model(str(folder))


def registered_from(client: MlflowClient, name: str, run_id: str) -> Any:
    """The version already registered from candidate run ``run_id``, or None."""
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def register_version(
    client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
) -> Any:
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description=description)
    # A step that died after registering (its worker killed, the database gone) runs again, in the same Dagster
    # run or a retry of it: the candidate's MLflow run is registered once, so it gets its version back.
    existing = registered_from(client, name, run_id)
    if existing is not None:
        return existing
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags, description=description)
    return version


def rollback(client: MlflowClient, name: str) -> tuple[str, str]:
    """Swap ``champion`` and ``previous``; returns (new champion, new previous)."""
    previous, current = rollback_move(ClientAliases(client), name)
    # The same compare-and-set as a promotion: a gate that moved the champion meanwhile is not undone.
    promote(client, name, previous, expected=current)
    return previous, current


# Registry errors worth another try: the store did not answer (MLflow wraps a lost database connection as
# TEMPORARILY_UNAVAILABLE). Anything else (no such version, a conflict) is an answer, not an outage.
_TRANSIENT = ("TEMPORARILY_UNAVAILABLE",)
PROMOTE_ATTEMPTS = 4
PROMOTE_BACKOFF_S = 0.5
_ANY = object()


def promote(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    expected: object = _ANY,
    attempts: int = PROMOTE_ATTEMPTS,
    log: Callable[[str], None] = _log.warning,
) -> str | None:
    """Point ``champion`` at ``version``; the former champion keeps ``previous``. Returns the former.

    ``expected`` is the champion version the decision was made on (None: there was none): a compare-and-set.
    The alias is read again right before it moves; if it moved meanwhile (an operator's promotion, another
    gate), PromotionConflict names both versions and nothing moves. An unreachable store is retried
    ``attempts`` times with a doubling pause, each retry logged; every attempt converges on the same two
    aliases (champion = version, previous = the expected former), so a retry after a half-done move finishes
    it rather than moving again. Still unreachable after that: the store's error propagates."""
    want = None if expected is None or expected is _ANY else str(expected)
    for attempt in range(1, attempts + 1):
        try:
            return compare_and_set(
                ClientAliases(client), name, str(version), want, check=expected is not _ANY
            )
        except MlflowException as exc:
            if exc.error_code not in _TRANSIENT or attempt == attempts:
                raise
            pause = PROMOTE_BACKOFF_S * 2 ** (attempt - 1)
            log(
                f"{name}: registry unreachable while promoting version {version} (attempt {attempt} of "
                f"{attempts}): {exc.message.splitlines()[0] if exc.message else exc}; retrying in {pause:.1f} s"
            )
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


class ClientAliases:
    """core.aliases.Aliases on MLflow's client."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    def version_of(self, name: str, alias: str) -> str | None:
        found = _by_alias(self.client, name, alias)
        return str(found.version) if found is not None else None

    def point(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)
