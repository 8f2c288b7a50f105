"""What every command shares: the checkout, settings applied to this process, error messages."""

from __future__ import annotations

from pathlib import Path

from aimass_pipeline.core.registry import ensure_store
from aimass_pipeline.core.specs import UseCaseSpec
from aimass_pipeline.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def ready_settings() -> Settings:
    """Settings applied to this process, with the tracking store's schema created before any run worker."""
    settings = load_settings().prepare()
    ensure_store(settings.mlflow_tracking_uri)
    return settings


def spec_or_exit(specs: dict[str, UseCaseSpec], name: str) -> UseCaseSpec:
    if name not in specs:
        raise SystemExit(f"unknown use case {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]
