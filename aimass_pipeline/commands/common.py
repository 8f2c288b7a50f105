"""What every command shares: the venv's executables, signals for children, settings, error messages."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from aimass_pipeline.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def bin_path(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def reset_signals() -> None:
    # Children of a non-interactive shell inherit ignored SIGINT/SIGTERM; without this they cannot be stopped.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def ready_settings():
    """Settings applied to this process, with the tracking store's schema created before any run worker."""
    from aimass_pipeline.lib.registry import ensure_store

    settings = load_settings().prepare()
    ensure_store(settings.mlflow_tracking_uri)
    return settings


def run_failures(result) -> list[str]:
    """The failed steps and checks of a run, for a message an operator can act on."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            cause = (
                error.cause.message.strip()
                if error and error.cause
                else (error.message.strip() if error else "")
            )
            lines.append(f"step {event.step_key} failed: {cause.splitlines()[-1] if cause else ''}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            check = event.event_specific_data
            lines.append(
                f"check {check.check_name} on {check.asset_key.to_user_string()} failed: {check.description or ''}"
            )
    return lines


def spec_or_exit(specs: dict, name: str):
    if name not in specs:
        raise SystemExit(f"unknown use case {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]
