"""What a champion service starts on, decided from its bento's arguments and the environment (read by
``aimass_pipeline.settings``), and the stores it needs reached before it answers."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bentoml

from aimass_pipeline.core.prediction_log import PREFIX, PredictionLogger
from aimass_pipeline.core.registry import THRESHOLD_TAG, threshold_of
from aimass_pipeline.core.specs import UseCaseSpec, load_specs
from aimass_pipeline.serving.champion import registry_champion, with_retries
from aimass_pipeline.serving.lifecycle import api_key_id
from aimass_pipeline.serving.schema import BentoArgs
from aimass_pipeline.settings import ServingSettings

log = logging.getLogger(__name__)


class StartupConfigError(ValueError):
    """Nothing names the use case to serve, or what names it is not a known use case."""


@dataclass(frozen=True)
class Startup:
    """The use case and model a service starts on, with the spec whose contract it serves."""

    use_case: str
    model_tag: str
    spec: UseCaseSpec
    settings: ServingSettings

    @property
    def follows_champion(self) -> bool:
        return self.settings.poll_s > 0 and bool(self.settings.tracking_uri)


def resolve_startup(args: BentoArgs, settings: ServingSettings) -> Startup:
    """The bento's arguments win over the environment: a stray ``AIMASS_BENTO_MODEL`` must not make a bento
    built from version 3 quietly serve version 5."""
    use_case = args.use_case or settings.use_case
    if not use_case:
        # No fallback use case: a server started without one would answer with some other model's contract.
        raise StartupConfigError(
            "nothing names the use case to serve: the bento has no 'use_case' argument and AIMASS_USE_CASE "
            "is unset (serve a built bento with `aimass serve <use_case>`, or set AIMASS_USE_CASE)"
        )
    model_tag = args.model_tag or settings.model_tag or f"{use_case}:latest"
    # A built bento carries its spec, so it serves the contract it was trained under, also for use cases
    # defined outside the package.
    if args.spec:
        spec = UseCaseSpec.model_validate(args.spec)
    else:
        specs = load_specs()
        if use_case not in specs:
            raise StartupConfigError(
                f"use case {use_case!r} (from {'the bento' if args.use_case else 'AIMASS_USE_CASE'}) has no "
                f"spec; known: {', '.join(sorted(specs))}"
            )
        spec = specs[use_case]
    return Startup(use_case, model_tag, spec, settings)


def _stored_model(model_tag: str) -> Any:
    # BentoModel.stored, not the resolving descriptor: that would fall back to pulling from BentoCloud.
    stored = bentoml.models.BentoModel(model_tag).stored
    if stored is None:
        raise LookupError(f"no model {model_tag} in the model store")
    return stored


def require_model_stores(startup: Startup) -> Any:
    """The bento's model, and the registry when the service follows the champion, retried with backoff."""
    settings = startup.settings
    stored = with_retries(
        f"model {startup.model_tag} in the BentoML model store under {settings.bentoml_home}",
        lambda: _stored_model(startup.model_tag),
        settings.startup_retries,
    )
    # A malformed threshold fails here, in the serve process, rather than in a worker BentoML restarts forever.
    bento_threshold(stored)
    if startup.follows_champion:
        champion = registry_champion(settings.tracking_uri, startup.use_case, settings.startup_retries)
        log.info("%s: the registry's champion is version %s", startup.use_case, champion)
    return stored


def bento_threshold(stored: Any) -> float:
    """The threshold the bento's model was built with (its registry tag, copied at build): the registry's rule."""
    metadata = stored.info.metadata
    given = {THRESHOLD_TAG: str(metadata[THRESHOLD_TAG])} if THRESHOLD_TAG in metadata else {}
    return threshold_of(given, f"bento model {stored.tag}")


def prediction_logger(
    settings: ServingSettings, use_case: str, on_dropped: Callable[[int], None], prefix: str = PREFIX
) -> PredictionLogger | None:
    """The service's prediction log (``prefix``: the served rows', or the shadow's beside them)."""
    if not settings.lake_url or not settings.prediction_log:
        log.info("prediction log off (AIMASS_LAKE_URL unset or AIMASS_PREDICTION_LOG=off)")
        return None
    logger = PredictionLogger(
        settings.lake_url,
        use_case,
        flush_interval_s=settings.flush_s,
        storage_options=settings.storage_options,
        on_dropped=on_dropped,
        api_key_id=api_key_id(settings.api_key),
        prefix=prefix,
    )
    # on_shutdown is the normal path; atexit covers an interpreter exit that skips it. close() is
    # idempotent.
    atexit.register(logger.close)
    log.info("prediction log: %s every %.1f s", logger.fs.unstrip_protocol(logger.base), settings.flush_s)
    return logger
