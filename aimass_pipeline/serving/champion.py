"""The model a running service answers with, and how it follows ``models:/<use_case>@champion``.

The service starts on the model its bento pins. A ``ChampionFollower`` thread then polls the MLflow registry;
when the ``champion`` alias points at another version it loads that version next to the serving one and swaps
one reference to an immutable ``ServedModel``. A request reads that reference once, so it is scored and
answered entirely by the old or entirely by the new model: requests in flight finish on the old one, nothing
waits for the load, and no request fails because of a swap. A load that fails is logged and retried at the
next poll while the old model keeps serving.

Before a swap the new version is vetted (``vet``): the contract it was trained under (a registry tag, see
``core.version_contract``) must be satisfiable by the served request schema, and it must score both its own
input example and a record of the served schema. A version that fails is refused: the old model keeps
serving, the refusal is logged, kept in ``refusal()`` (the ``/readyz`` header ``x-aimass-champion-refused``)
and counted by the ``aimass_champion_refused`` gauge, and it is not loaded again until the alias moves.
"""

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from aimass_pipeline.core import registry
from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.version_contract import version_contract
from aimass_pipeline.models import SKOPS_TRUSTED_TYPES
from aimass_pipeline.serving.served_model import (  # noqa: F401 - ServedModel re-exported for the service
    ServedModel,
    model_frame,
    refusal,
    set_refusal,
    vet,
)
from aimass_pipeline.settings import load_serving_settings

log = logging.getLogger(__name__)

T = TypeVar("T")


class StartupError(RuntimeError):
    """Something the service needs at start stayed unreachable after every retry."""


def single_threaded(model: Any) -> Any:
    """A model loaded from disk keeps ``n_jobs=None`` (= every core); on a small box one request then fans
    out over all cores and the latency tail explodes. One thread per inference."""
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    n_jobs = {name: 1 for name in params if name == "n_jobs" or name.endswith("__n_jobs")}
    if n_jobs:
        model.set_params(**n_jobs)
    return model


def champion_version(tracking_uri: str, name: str) -> str | None:
    """The version the alias points at; None when the model or alias does not exist. Raises when the
    registry cannot be reached."""
    version = registry.champion_version(registry.registry_client(tracking_uri), name)
    return None if version is None else str(version.version)


def redacted(uri: str) -> str:
    """The URI without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", uri)


def registry_champion(tracking_uri: str, name: str, retries: int) -> str | None:
    """The champion version, retrying an unreachable registry; StartupError when it stays unreachable."""
    return with_retries(
        f"the MLflow model registry at {redacted(tracking_uri)}",
        lambda: champion_version(tracking_uri, name),
        retries,
    )


def load_served(uri: str, signing_key: str | None = None) -> Any:
    """A model directory or URI, verified against its signature (the key: ``AIMASS_SIGNING_KEY`` unless
    given) and the code's skops trust list before anything of it is unpickled."""
    key = signing_key if signing_key is not None else load_serving_settings().signing_key
    return registry.load_model(uri, key, SKOPS_TRUSTED_TYPES)


def load_version(tracking_uri: str, name: str, version: str, signing_key: str | None = None) -> ServedModel:
    """Load one registered version, pinned by number: the alias may move again while this loads."""
    import mlflow.artifacts
    from mlflow.models import Model

    client = registry.registry_client(tracking_uri)
    mv = client.get_model_version(name, version)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri(name, version), tracking_uri=tracking_uri
    )
    model = load_served(local, signing_key)
    example = Model.load(local).load_input_example(local)
    return ServedModel(
        single_threaded(model),
        name,
        str(mv.version),
        registry.threshold_of(mv.tags, f"{name} version {mv.version}"),
        contract=version_contract(mv.tags),
        example=example if isinstance(example, pd.DataFrame) else None,
    )


def with_retries(what: str, attempt: Callable[[], T], retries: int, backoff_s: float = 1.0) -> T:
    """``attempt()`` until it succeeds, ``retries`` more times at most with doubling waits; then a
    StartupError naming ``what`` and the last cause."""
    for n in range(retries + 1):
        try:
            return attempt()
        except Exception as exc:  # noqa: BLE001 - any cause is retried, and re-raised below by name
            if n == retries:
                raise StartupError(
                    f"{what} unreachable after {retries + 1} attempts: {type(exc).__name__}: {exc}"
                ) from exc
            wait = backoff_s * 2**n
            log.warning(
                "%s unreachable (attempt %d/%d): %s; retrying in %.1f s", what, n + 1, retries + 1, exc, wait
            )
            time.sleep(wait)
    raise AssertionError("unreachable")


class ChampionFollower:
    """Serves ``current`` and, every ``poll_s`` seconds, swaps in the version the champion alias names."""

    def __init__(
        self,
        initial: ServedModel,
        tracking_uri: str,
        poll_s: float,
        on_swap: Callable[[ServedModel, ServedModel], None] | None = None,
        signing_key: str | None = None,
        *,
        offered: Contract | None = None,
        record: dict[str, Any] | None = None,
        on_refuse: Callable[[str, str | None], None] | None = None,
        prepare: Callable[[ServedModel], ServedModel] = lambda served: served,
    ) -> None:
        """``offered`` is the served request schema's contract and ``record`` one of its records; with them
        every version is vetted before it serves. ``on_refuse(version, reason)`` hears each refusal, and
        ``on_refuse(version, None)`` when the alias leaves a refused version."""
        self.signing_key = signing_key
        self.prepare = prepare  # what the service serves of a loaded version (it compiles it)
        self.current = initial
        self.tracking_uri = tracking_uri
        self.poll_s = poll_s
        self.on_swap = on_swap
        self.offered = offered
        self.record = record
        self.on_refuse = on_refuse
        self.refused: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _clear_refusals(self, keep: str | None) -> None:
        for version in [v for v in self.refused if v != keep]:
            del self.refused[version]
            if self.on_refuse is not None:
                self.on_refuse(version, None)
        set_refusal(self.refused)

    def poll_once(self) -> bool:
        """One look at the registry; True when a new model now serves. Raises what the registry or the
        load raised, leaving the current model in place; a version that fails ``vet`` is refused."""
        old = self.current
        version = champion_version(self.tracking_uri, old.name)
        self._clear_refusals(keep=version)
        if version is None or version == old.version or version in self.refused:
            return False
        started = time.monotonic()
        new = load_version(self.tracking_uri, old.name, version, self.signing_key)
        problems = [] if self.offered is None else vet(new, self.offered, self.record or {})
        if problems:
            reason = "; ".join(problems)
            self.refused[version] = reason
            set_refusal(self.refused)
            log.error(
                "champion of %s: refused version %s, still serving version %s: %s",
                old.name,
                version,
                old.version,
                reason,
            )
            if self.on_refuse is not None:
                self.on_refuse(version, reason)
            return False
        new = self.prepare(new)  # vetted as registered, then compiled (serving.compiled checks it agrees)
        # One reference assignment: atomic under the GIL, and each request reads it once.
        self.current = new
        log.info(
            "champion of %s: version %s -> %s (loaded in %.2f s)",
            old.name,
            old.version,
            new.version,
            time.monotonic() - started,
        )
        if self.on_swap is not None:
            self.on_swap(old, new)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll_once()
            except Exception:  # the old model keeps serving; the next poll retries
                log.exception(
                    "could not follow the champion of %s; still serving version %s",
                    self.current.name,
                    self.current.version,
                )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aimass-champion-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_s + 30)
