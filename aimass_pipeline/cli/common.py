"""What every command shares: the checkout, settings applied to this process, error messages."""

from __future__ import annotations

import sys
from pathlib import Path

from aimass_pipeline.core.registry import ensure_store
from aimass_pipeline.core.specs import SpecError, UseCaseSpec
from aimass_pipeline.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def ready_settings() -> Settings:
    """Settings applied to this process, with the tracking store's schema created before any run worker."""
    settings = load_settings().prepare()
    ensure_store(settings.mlflow_tracking_uri)
    return settings


# Exit code of a command about a use case whose spec cannot be used, or of settings AIMass cannot work with.
EXIT_CONFIG = 2


def spec_or_exit(
    specs: dict[str, UseCaseSpec], name: str, broken: dict[str, SpecError] | None = None
) -> UseCaseSpec:
    """The spec of ``name``; exits 2 with one line naming the file and field when its spec is broken,
    1 when no spec defines it."""
    if broken and name in broken:
        print(f"aimass: use case {name!r} is not loaded: {broken[name]}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG)
    if name not in specs:
        raise SystemExit(f"aimass: unknown use case {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def report_broken(settings: Settings) -> dict[str, SpecError]:
    """Print one line per use case whose spec cannot be used (the others carry on); returns them."""
    broken = settings.spec_errors()
    for name, error in broken.items():
        print(f"aimass: use case {name!r} is not loaded (skipped): {error}", file=sys.stderr, flush=True)
    return broken
