"""What a service starts on: nothing is guessed when nothing names the use case."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aimass_pipeline.serving.schema import BentoArgs
from aimass_pipeline.serving.startup import StartupConfigError, resolve_startup
from aimass_pipeline.settings import load_serving_settings


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AIMASS_USE_CASE", raising=False)
    monkeypatch.delenv("AIMASS_BENTO_MODEL", raising=False)
    return load_serving_settings()


def test_nothing_naming_the_use_case_is_an_error_not_credit_risk(settings) -> None:
    with pytest.raises(StartupConfigError) as raised:
        resolve_startup(BentoArgs(), settings)
    message = str(raised.value)
    assert "AIMASS_USE_CASE" in message and "use_case" in message, message


def test_an_unknown_use_case_is_named(settings) -> None:
    with pytest.raises(StartupConfigError, match="'no_such_case'.*credit_risk"):
        resolve_startup(BentoArgs(), replace(settings, use_case="no_such_case"))


def test_the_environment_names_the_use_case_when_serving_from_source(settings) -> None:
    startup = resolve_startup(BentoArgs(), replace(settings, use_case="digits"))
    assert (startup.use_case, startup.model_tag) == ("digits", "digits:latest")
