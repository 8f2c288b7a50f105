"""Following the champion alias in process, against a real SQLite MLflow registry."""

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from mlflow import MlflowClient

from aimass_pipeline.serving.champion import (
    ChampionFollower,
    StartupError,
    champion_version,
    load_version,
    registry_champion,
    with_retries,
)
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.serving.test_bento_service import (
    USE_CASE,
    VALID,
    _crown,
    _prepared_settings,
    _register,
    _train,
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as mp:
        settings = _prepared_settings(tmp_path_factory.mktemp("aimass-champion"), mp)
        _register(settings, _train(seed=7))
        _register(settings, _train(seed=8))
        _crown("1")
        yield settings


def _artifacts(settings: Settings, version: str) -> Path:
    uri = MlflowClient().get_model_version_download_uri(USE_CASE, version)
    return Path(urlparse(uri).path if uri.startswith("file:") else uri)


def test_a_promotion_swaps_the_model_and_a_held_reference_keeps_the_old(registry: Settings) -> None:
    uri = registry.mlflow_tracking_uri
    follower = ChampionFollower(load_version(uri, USE_CASE, "1"), uri, poll_s=60)
    in_flight = follower.current

    assert follower.poll_once() is False
    _crown("2")
    try:
        assert follower.poll_once() is True
    finally:
        _crown("1")

    assert follower.current.version == "2"
    assert in_flight.version == "1", "a request that read the old model keeps it"
    frame = pd.DataFrame([VALID])
    assert in_flight.model.predict_proba(frame)[0, 1] != follower.current.model.predict_proba(frame)[0, 1]


def test_a_failed_load_keeps_the_old_model_and_the_next_poll_retries(registry: Settings) -> None:
    uri = registry.mlflow_tracking_uri
    follower = ChampionFollower(load_version(uri, USE_CASE, "1"), uri, poll_s=60)
    artifacts = _artifacts(registry, "2")
    hidden = artifacts.with_name(artifacts.name + "-hidden")
    _crown("2")
    try:
        shutil.move(artifacts, hidden)
        with pytest.raises(Exception):  # noqa: B017 - whatever MLflow raises for missing files
            follower.poll_once()
        assert follower.current.version == "1"

        shutil.move(hidden, artifacts)
        assert follower.poll_once() is True
        assert follower.current.version == "2"
    finally:
        if hidden.exists():
            shutil.move(hidden, artifacts)
        _crown("1")


def test_the_thread_follows_the_alias(registry: Settings) -> None:
    uri = registry.mlflow_tracking_uri
    swaps: list[tuple[str, str]] = []
    follower = ChampionFollower(
        load_version(uri, USE_CASE, "1"),
        uri,
        poll_s=0.2,
        on_swap=lambda a, b: swaps.append((a.version, b.version)),
    )
    follower.start()
    try:
        _crown("2")
        deadline = time.monotonic() + 20
        while follower.current.version != "2" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.stop()
        _crown("1")

    assert follower.current.version == "2"
    assert swaps == [("1", "2")]


def test_a_missing_sqlite_registry_is_unreachable_not_created(tmp_path: Path) -> None:
    db = tmp_path / "nowhere" / "mlflow.db"

    with pytest.raises(
        StartupError, match=r"the MLflow model registry at sqlite:///.* unreachable after 2 attempts"
    ):
        registry_champion(f"sqlite:///{db}", USE_CASE, retries=1)
    assert not db.exists()


def test_champion_version_is_none_without_model_or_alias(registry: Settings) -> None:
    assert champion_version(registry.mlflow_tracking_uri, "no_such_model") is None
    assert champion_version(registry.mlflow_tracking_uri, USE_CASE) == "1"


def test_with_retries_retries_then_names_what_failed() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("refused")
        return "ok"

    assert with_retries("thing", flaky, retries=2, backoff_s=0.01) == "ok"
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(StartupError, match=r"^thing unreachable after 2 attempts: ConnectionError: refused$"):
        with_retries("thing", flaky, retries=1, backoff_s=0.01)
    assert len(calls) == 2
