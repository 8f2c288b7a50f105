"""``aimass up`` end to end: the Dagster webserver, its GraphQL API, the asset catalog in a real browser, MLflow.

Starts the real ``aimass up`` (``dagster dev`` + ``mlflow ui``) on a throwaway ``AIMASS_HOME`` and free ports,
checks every lifecycle asset and its stage group through GraphQL, renders the asset catalog in headless
Debian Chromium through selenium (screenshot in the test's tmp dir), checks the MLflow UI answers, and then
checks that one SIGINT to ``aimass up`` stops all it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset
import pytest
import requests
from mlflow.tracking import MlflowClient
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from aimass_pipeline.core.registry import champion_version
from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.conftest import free_port
from aimass_pipeline_tests.serving.test_bento_service import VALID

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# How headless Chromium must be started on these machines (closed network, root, no GPU, no screen).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1400",
)
STARTUP_TIMEOUT_S = 120
# A champion's server starts alongside Dagster and MLflow and then loads its model: on 2 busy cores, minutes.
CHAMPION_TIMEOUT_S = 300
# `aimass up` gives its children 30 s (cli/up.py) and then kills what is left: it must be gone by then.
STOP_TIMEOUT_S = 45
# Grandchildren (dagster's code server) may outlive `aimass up` by a few seconds while they shut down.
DRAIN_TIMEOUT_S = 15

EXPECTED_ASSET_GROUPS = {
    "credit_risk/raw_applications": "collection",
    "credit_risk/clean_applications": "preprocessing",
    "credit_risk/stg_credit_applications": "transformation",
    "credit_risk/credit_features": "transformation",
    "credit_risk/credit_features_profile": "analysis",
    "credit_risk/training_set": "training",
    "credit_risk/logreg_candidate": "training",
    "credit_risk/xgboost_candidate": "training",
    "credit_risk/xgboost_params": "optimisation",
    "breast_cancer/raw_biopsies": "collection",
    "breast_cancer/biopsies_features": "transformation",
    "digits/clean_images": "preprocessing",
    "digits/torch_cnn_candidate": "training",
    "digits/champion_model": "registration",
    "credit_risk/frozen_holdout": "evaluation",
    "credit_risk/candidate_evaluation": "evaluation",
    "credit_risk/champion_model": "registration",
    "credit_risk/champion_bento": "deployment",
}
EXPECTED_JOBS = {"credit_risk_lifecycle", "breast_cancer_lifecycle", "digits_lifecycle"}
EXPECTED_SENSORS = {"credit_risk_landing_sensor", "breast_cancer_landing_sensor", "digits_landing_sensor"}
# What the rendered catalog must show (the table is virtualised: check names that fit in one screen).
CATALOG_TEXT = ("raw_biopsies", "champion_bento", "collection", "deployment")

WORKSPACE_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""
ASSETS_QUERY = "{ assetNodes { assetKey { path } groupName } }"
REPOSITORIES_QUERY = """
{ repositoriesOrError { __typename
    ... on RepositoryConnection { nodes { name jobs { name } sensors { name } } }
    ... on PythonError { message } } }
"""


@dataclass
class Up:
    proc: subprocess.Popen
    log: Path
    dagster_url: str
    mlflow_url: str
    serve_url: str

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _reset_signals() -> None:
    # A non-interactive shell may hand us ignored SIGINT/SIGTERM; children would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _live_group_members(pgid: int) -> list[str]:
    """Processes of the group that are still running (zombies waiting for a reaper don't count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # Fields after the ")" that closes the command name: state ppid pgrp ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(f"{entry.name} {cmdline.strip()[:160]}")
    return members


def _get(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


def _graphql(base_url: str, query: str) -> dict:
    response = requests.post(f"{base_url}/graphql", json={"query": query}, timeout=30)
    assert response.status_code == 200, f"POST /graphql: {response.status_code} {response.text[:500]}"
    body = response.json()
    assert "errors" not in body, f"GraphQL errors: {body['errors']}"
    return body["data"]


@contextmanager
def aimass_up(home: Path) -> Iterator[Up]:
    dagster_port, mlflow_port, serve_port = free_port(), free_port(), free_port()
    env = dict(os.environ, AIMASS_HOME=str(home), AIMASS_ENV="local")
    # The home's own key file signed what it holds: a key another test exported must not stand in for it.
    env.pop("AIMASS_SIGNING_KEY", None)
    env.pop("AIMASS_LAKE_URL", None)
    log = home.parent / "aimass-up.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("aimass")),
                "up",
                "--host",
                "127.0.0.1",
                "--port",
                str(dagster_port),
                "--mlflow-port",
                str(mlflow_port),
                "--serve-port",
                str(serve_port),
            ],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_reset_signals,
        )
    up = Up(
        proc,
        log,
        f"http://127.0.0.1:{dagster_port}",
        f"http://127.0.0.1:{mlflow_port}",
        f"http://127.0.0.1:{serve_port}",
    )
    try:
        yield up
    finally:
        _stop(up)


def _stop(up: Up) -> None:
    """SIGINT `aimass up` as an operator's Ctrl-C would; fail if it or anything it started lingers."""
    pgid = up.proc.pid  # start_new_session: the group is ours alone
    started = time.monotonic()
    if up.proc.poll() is None:
        up.proc.send_signal(signal.SIGINT)
    try:
        up.proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        leftovers = _live_group_members(pgid)
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        up.proc.wait(timeout=10)
        pytest.fail(
            f"`aimass up` did not exit within {STOP_TIMEOUT_S}s of SIGINT; killed its group: {leftovers}\n"
            + up.log_tail()
        )
    exited = time.monotonic() - started
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while (leftovers := _live_group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if leftovers:
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        pytest.fail(
            f"`aimass up` exited (rc={up.proc.returncode}) but left processes running "
            f"{DRAIN_TIMEOUT_S}s later; killed: {leftovers}\n" + up.log_tail()
        )
    print(
        f"`aimass up` exited {exited:.1f}s after SIGINT (rc={up.proc.returncode}), "
        f"its process group was empty after {time.monotonic() - started:.1f}s"
    )


def _wait_until_serving(up: Up) -> None:
    """/server_info answers 200 and the code location has loaded."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if up.proc.poll() is not None:
            pytest.fail(f"`aimass up` exited early with rc={up.proc.returncode}:\n{up.log_tail()}")
        if _get(f"{up.dagster_url}/server_info") == 200:
            entries = _graphql(up.dagster_url, WORKSPACE_QUERY)["workspaceOrError"].get("locationEntries", [])
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                assert not errors, f"code location failed to load: {errors}"
                return
        if time.monotonic() > deadline:
            pytest.fail(f"Dagster did not serve within {STARTUP_TIMEOUT_S}s:\n{up.log_tail()}")
        time.sleep(0.5)


def _check_graphql(base_url: str) -> None:
    nodes = _graphql(base_url, ASSETS_QUERY)["assetNodes"]
    groups = {"/".join(node["assetKey"]["path"]): node["groupName"] for node in nodes}
    missing = sorted(set(EXPECTED_ASSET_GROUPS) - set(groups))
    assert not missing, f"assets missing from the Dagster webserver: {missing}; it has {sorted(groups)}"
    wrong = {
        key: (groups[key], group) for key, group in EXPECTED_ASSET_GROUPS.items() if groups[key] != group
    }
    assert not wrong, f"assets in the wrong group (have, want): {wrong}"

    repos = _graphql(base_url, REPOSITORIES_QUERY)["repositoriesOrError"]
    assert repos["__typename"] == "RepositoryConnection", repos
    jobs = {job["name"] for repo in repos["nodes"] for job in repo["jobs"]}
    sensors = {sensor["name"] for repo in repos["nodes"] for sensor in repo["sensors"]}
    assert EXPECTED_JOBS <= jobs, f"jobs missing: {sorted(EXPECTED_JOBS - jobs)}; have {sorted(jobs)}"
    assert EXPECTED_SENSORS <= sensors, f"sensors missing: {sorted(EXPECTED_SENSORS - sensors)}"


def _check_catalog_in_browser(base_url: str, profile_dir: Path, screenshot: Path) -> None:
    # The UI opens a "join the community" dialog (asking for an e-mail) on a fresh instance served on
    # localhost; mark it seen on the instance, exactly as the dialog's own Skip button does.
    assert _graphql(base_url, "mutation { setNuxSeen }")["setNuxSeen"] is True

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(f"{base_url}/assets")
        body = driver.find_element(By.TAG_NAME, "body")
        try:
            WebDriverWait(driver, 30, poll_frequency=0.25).until(
                lambda _: all(text in body.text for text in CATALOG_TEXT)
            )
            shown = True
        except TimeoutException:
            shown = False
        if not shown:
            driver.save_screenshot(str(screenshot))
            pytest.fail(
                f"the asset catalog at {driver.current_url} never showed all of {CATALOG_TEXT}; "
                f"screenshot {screenshot}; page text:\n{body.text[:4000]}"
            )
        if "Join the Dagster community" in body.text:  # should not happen after setNuxSeen
            driver.find_element(By.XPATH, "//button[normalize-space()='Skip']").click()
        assert driver.save_screenshot(str(screenshot)), "screenshot failed"
        print(f"asset catalog screenshot: {screenshot}")
    finally:
        driver.quit()


def _wait_for_mlflow(up: Up) -> None:
    deadline = time.monotonic() + 30
    while (status := _get(f"{up.mlflow_url}/")) != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"MLflow UI at {up.mlflow_url}/ answered {status}, not 200:\n{up.log_tail()}")
        time.sleep(0.5)


@pytest.mark.timeout(300)
def test_aimass_up_serves_dagster_catalog_and_mlflow(tmp_path: Path) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        # A missing browser fails, never skips: a skipped UI test reads as a passing one.
        pytest.fail(
            f"needs Chromium and ChromeDriver at {CHROMIUM} and {CHROMEDRIVER}: `make browser` installs them "
            "as root (apt-get install -y chromium chromium-driver); otherwise ask your administrator"
        )
    home = tmp_path / "aimass_home"
    home.mkdir()
    started = time.monotonic()
    with aimass_up(home) as up:
        _wait_until_serving(up)
        print(f"Dagster serving after {time.monotonic() - started:.1f}s")
        _check_graphql(up.dagster_url)
        _check_catalog_in_browser(
            up.dagster_url, tmp_path / "chromium-profile", tmp_path / "asset-catalog.png"
        )
        _wait_for_mlflow(up)
    print(f"whole test {time.monotonic() - started:.1f}s")


def _wait_for_champion_endpoint(up: Up) -> None:
    deadline = time.monotonic() + CHAMPION_TIMEOUT_S
    while _get(f"{up.serve_url}/readyz") != 200:
        if up.proc.poll() is not None:
            pytest.fail(f"`aimass up` exited early with rc={up.proc.returncode}:\n{up.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"no champion endpoint at {up.serve_url} after {CHAMPION_TIMEOUT_S}s:\n{up.log_tail()}"
            )
        time.sleep(0.5)


def _logged_prediction_ids(lake: Path, use_case: str) -> set[str]:
    folder = lake / "predictions" / use_case
    if not folder.is_dir():
        return set()
    return set(
        pyarrow.dataset.dataset(folder, format="parquet").to_table(columns=["prediction_id"])[0].to_pylist()
    )


@pytest.mark.timeout(600)
def test_aimass_up_serves_every_champion(lifecycle_home: Path, tmp_path: Path) -> None:
    # A copy: `aimass up` runs the Dagster daemon and a server that logs predictions into the home.
    home = tmp_path / "aimass_home"
    shutil.copytree(lifecycle_home, home, symlinks=True)
    settings = load_settings(home)
    champion = champion_version(MlflowClient(tracking_uri=settings.mlflow_tracking_uri), "credit_risk")
    assert champion is not None, "the lifecycle home has no credit_risk champion"
    with aimass_up(home) as up:
        _wait_for_champion_endpoint(up)
        response = requests.post(f"{up.serve_url}/predict", json={"records": [VALID]}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model_name"], body["model_version"]) == ("credit_risk", str(champion.version))
        log = up.log.read_text()
        assert f"Serving credit_risk: champion version {champion.version}" in log, log
        assert f"at {up.serve_url}" in log
        for other in ("breast_cancer", "digits"):
            assert f"{other}: no champion yet, not served" in log, log
    assert _get(f"{up.serve_url}/readyz") is None, "the champion's server outlived `aimass up`"
    # Written by the server's shutdown hook: it was stopped cleanly, not killed.
    prediction_id = body["predictions"][0]["prediction_id"]
    assert prediction_id in _logged_prediction_ids(home / "lake", "credit_risk")
