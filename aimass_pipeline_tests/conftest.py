import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.settings import Settings, load_settings

CREDIT_SPEC = load_specs()["credit_risk"]
CREDIT_RISK = CREDIT_SPEC.contract

ROOT = Path(__file__).resolve().parent.parent
AIMASS = str(Path(sys.executable).with_name("aimass"))
# The credit_risk lifecycle with tuning capped, as the lifecycle tests run it (twice, to compare).
LIFECYCLE_RUN = [AIMASS, "run", "--use-case", "credit_risk", "--max-trials", "3"]

# Every variable Settings.prepare() exports; tests restore them so homes never leak between tests.
_ENV_KEYS = [
    "AIMASS_ENV",
    "AIMASS_HOME",
    "DAGSTER_HOME",
    "MLFLOW_TRACKING_URI",
    "BENTOML_HOME",
    "AIMASS_LAKE_URL",
    "AIMASS_WAREHOUSE_PATH",
    "AIMASS_LANDING_ROOT",
    "AIMASS_LABELS_ROOT",
    "AIMASS_MLFLOW_ARTIFACTS",
    "AIMASS_PG_HOST",
    "AIMASS_PG_PORT",
    "AIMASS_PG_USER",
    "AIMASS_PG_PASSWORD",
    "AIMASS_PG_DAGSTER_DB",
    "AIMASS_PG_MLFLOW_DB",
    "AIMASS_PG_WAREHOUSE_DB",
    "AIMASS_PG_WAREHOUSE_SCHEMA",
    "AIMASS_DBT_TARGET",
    "AIMASS_LANDING_URL",
    "AIMASS_LABELS_URL",
    "AIMASS_SIGNING_KEY",
    "AIMASS_PII_KEY",
]


def _environment_kept() -> Iterator[None]:
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Every test leaves the process environment as it found it: ``Settings.prepare()`` exports a home's
    variables, and a later test must never read another test's lake, instance or registry."""
    yield from _environment_kept()


@pytest.fixture(scope="module", autouse=True)
def _restore_environment_after_module() -> Iterator[None]:
    """The same for a module's fixtures (a module-scoped home calls ``prepare()`` too): the next module, on
    whichever xdist worker and in whichever order, starts from the environment the session started with."""
    yield from _environment_kept()


@pytest.fixture
def aimass_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh embedded-defaults home for one test."""
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AIMASS_HOME", str(tmp_path / "home"))
    settings = load_settings().prepare()
    for key in _ENV_KEYS:
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
    return settings


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_KEYS}
    env["AIMASS_HOME"] = str(home)
    return env


@pytest.fixture(scope="session")
def lifecycle_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home where `aimass run` has carried the real credit data through the whole lifecycle once."""
    home = tmp_path_factory.mktemp("lifecycle") / "home"
    result = subprocess.run(
        LIFECYCLE_RUN,
        env=env_for(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (home / "run.log").write_text(result.stdout + result.stderr)
    yield home


@pytest.fixture(scope="session")
def credit_frame() -> pd.DataFrame:
    from aimass_pipeline.collection.datasets import packaged_frame

    return packaged_frame(CREDIT_SPEC.data.seed_source, CREDIT_RISK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The test files that share the session's ``lifecycle_home``: under pytest-xdist they run on one worker, so it
# is built once (the check below keeps the list true).
LIFECYCLE_HOME_FILES = (
    "aimass_pipeline_tests/cli/test_trace.py",
    "aimass_pipeline_tests/infra/test_k8s_serving.py",
    "aimass_pipeline_tests/test_lifecycle.py",
    "aimass_pipeline_tests/test_ui.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if "lifecycle_home" in getattr(item, "fixturenames", ()) and path not in LIFECYCLE_HOME_FILES:
            raise pytest.UsageError(f"{path} uses lifecycle_home: add it to conftest.LIFECYCLE_HOME_FILES")


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`make test` runs on two pytest-xdist workers: a file's tests stay on one worker (its module fixtures
    are built once, its tests keep their order), and the files sharing the lifecycle home stay together."""
    from xdist.scheduler import LoadFileScheduling

    class ByFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "lifecycle_home" if path in LIFECYCLE_HOME_FILES else path

    return ByFile(config, log)
