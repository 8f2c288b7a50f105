"""The model a running service answers with, and how it follows ``models:/<use_case>@champion``.

The service starts on the model its bento pins. A ``ChampionFollower`` thread then polls the MLflow registry;
when the ``champion`` alias points at another version it loads that version next to the serving one and swaps
one reference to an immutable ``ServedModel``. A request reads that reference once, so it is scored and
answered entirely by the old or entirely by the new model: requests in flight finish on the old one, nothing
waits for the load, and no request fails because of a swap. A load that fails is logged and retried at the
next poll while the old model keeps serving.
"""

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aimass_pipeline.core import registry

log = logging.getLogger(__name__)

T = TypeVar("T")


class StartupError(RuntimeError):
    """Something the service needs at start stayed unreachable after every retry."""


@dataclass(frozen=True)
class ServedModel:
    model: Any
    name: str
    version: str
    threshold: float


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


def load_version(
    tracking_uri: str, name: str, version: str, prepare: Callable[[Any], Any] = lambda model: model
) -> ServedModel:
    """Load one registered version, pinned by number: the alias may move again while this loads.
    ``prepare`` turns the loaded model into what is served (the service compiles it)."""
    client = registry.registry_client(tracking_uri)
    mv = client.get_model_version(name, version)
    model = registry.load_model(client.get_model_version_download_uri(name, version))
    return ServedModel(
        prepare(single_threaded(model)),
        name,
        str(mv.version),
        registry.threshold_of(mv.tags, f"{name} version {mv.version}"),
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
        prepare: Callable[[Any], Any] = lambda model: model,
    ) -> None:
        self.prepare = prepare
        self.current = initial
        self.tracking_uri = tracking_uri
        self.poll_s = poll_s
        self.on_swap = on_swap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        """One look at the registry; True when a new model now serves. Raises what the registry or the
        load raised, leaving the current model in place."""
        old = self.current
        version = champion_version(self.tracking_uri, old.name)
        if version is None or version == old.version:
            return False
        started = time.monotonic()
        new = load_version(self.tracking_uri, old.name, version, self.prepare)
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
