"""A real ``bentoml serve`` of a built bento for the tests: started in its own process group, awaited on a
probe, stopped with SIGTERM (the clean stop that flushes the prediction log), killed only if that hangs."""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from aimass_pipeline.cli.serve import serve_command
from aimass_pipeline.core.processes import reset_signals
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import free_port

READY_TIMEOUT_S = 240


@dataclass(frozen=True)
class BentoServer:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, path: str = "/readyz") -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"bentoml serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # listening before the worker is up
            pass
        time.sleep(0.5)
    pytest.fail(f"bentoml serve not ready after {READY_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def bento_server(
    settings: Settings,
    use_case: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    ready_path: str = "/readyz",
) -> Iterator[BentoServer]:
    """Serve ``use_case``'s built bento on a free port with ``env`` (default: the settings' child env)
    until the block ends; yields once ``ready_path`` answers 200."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            serve_command(settings, use_case, port),
            env=settings.child_env() if env is None else env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=reset_signals,
            start_new_session=True,  # its own group, so teardown can reach the workers too
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, log_path, ready_path)
        yield BentoServer(url=url, proc=proc, log_path=log_path)
    finally:
        stop(proc)


@dataclass
class SteadyLoad:
    """One record posted to ``path`` at most ``rate`` times a second until stopped, keeping each answer's
    time and model version and every failure: what a client sees while the served model changes."""

    url: str
    record: dict
    path: str = "/predict"
    rate: float = 20.0
    answers: list[tuple[float, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                response = session.post(f"{self.url}{self.path}", json={"records": [self.record]}, timeout=30)
            except requests.RequestException as exc:
                self.failures.append(f"{self.path}: {exc}")
            else:
                if response.status_code == 200:
                    body = response.json()
                    version = body["model_version"] if self.path == "/predict" else body[0]["model_version"]
                    self.answers.append((time.monotonic(), version))
                else:
                    self.failures.append(f"{self.path}: {response.status_code} {response.text[:200]}")
            self.stop.wait(1 / self.rate)

    def first_answer_from(self, version: str, since: float, timeout_s: float) -> float:
        """Seconds from ``since`` to the first answer by ``version``."""
        deadline = since + timeout_s
        while time.monotonic() < deadline:
            later = [t for t, v in list(self.answers) if t >= since and v == version]
            if later:
                return later[0] - since
            time.sleep(0.05)
        pytest.fail(f"no answer from version {version} within {timeout_s} s; failures: {self.failures[:5]}")


@contextmanager
def steady_loads(*loads: SteadyLoad) -> Iterator[None]:
    """Run every load in its own thread for the block; stopped and joined however the block ends."""
    workers = [threading.Thread(target=load.run) for load in loads]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for load in loads:
            load.stop.set()
        for worker in workers:
            worker.join()
