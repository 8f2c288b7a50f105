"""The one place that reads the environment: the platform's settings (embedded defaults or production),
the Dagster instance they write, and what a served bento reads."""

from aimass_pipeline.settings.platform import (
    LOCAL,
    PROD,
    PostgresSettings,
    Settings,
    SettingsError,
    load_settings,
)
from aimass_pipeline.settings.serving import ServingSettings, load_serving_settings, storage_options

__all__ = [
    "LOCAL",
    "PROD",
    "PostgresSettings",
    "ServingSettings",
    "Settings",
    "SettingsError",
    "load_serving_settings",
    "load_settings",
    "storage_options",
]
