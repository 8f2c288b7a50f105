"""The service's shadow and canary arms, wired from its settings (see ``serving.arms``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.serving.arms import RolloutArms
from aimass_pipeline.serving.champion import load_version
from aimass_pipeline.serving.served_model import ServedModel, vet
from aimass_pipeline.serving.startup import prediction_logger
from aimass_pipeline.settings import ServingSettings

log = logging.getLogger(__name__)

SHADOW_PREFIX = "predictions_shadow"


def rollout_arms(
    settings: ServingSettings,
    use_case: str,
    name: str,
    prepare: Callable[[ServedModel], ServedModel],
    offered: object,
    record: dict,
    on_dropped: Callable[[int], None],
) -> RolloutArms:
    """Arms reading ``serving_state/<use case>.json`` from the service's lake; a version is loaded from the
    registry like a new champion, vetted against the served schema and prepared (compiled) the same way."""
    if not settings.lake_url or not settings.tracking_uri or settings.poll_s <= 0:
        return RolloutArms(use_case, None, 0, lambda v: _refuse(v), None, "")
    lake = Lake(settings.lake_url, settings.storage_options)

    def load(version: str) -> ServedModel:
        model = load_version(settings.tracking_uri, name, version, settings.signing_key)
        problems = vet(model, offered, record)  # type: ignore[arg-type]
        if problems:
            raise ValueError(f"{use_case} version {version} cannot serve this schema: {'; '.join(problems)}")
        return prepare(model)

    # Shadow rows the lake could not take count in the service's dropped-rows metric like served ones.
    shadow_log = prediction_logger(settings, use_case, on_dropped, prefix=SHADOW_PREFIX)
    return RolloutArms(use_case, lake, settings.poll_s, load, shadow_log, uuid.uuid4().hex[:12])


def _refuse(version: str) -> ServedModel:
    raise RuntimeError(f"cannot load version {version}: no lake, registry or polling configured")


def close_arms(arms: RolloutArms) -> None:
    """Stop the threads, then flush the shadow rows (after the last shadow scoring)."""
    arms.stop()
    if arms.shadow_log is not None:
        arms.shadow_log.close()
