"""A real ``bentoml serve`` of a built bento for the tests: started in its own process group, awaited on a
probe, stopped with SIGTERM (the clean stop that flushes the prediction log), killed only if that hangs."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from aimass_pipeline.lib.bento import restore_default_signals, serve_command
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
            preexec_fn=restore_default_signals,
            start_new_session=True,  # its own group, so teardown can reach the workers too
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, log_path, ready_path)
        yield BentoServer(url=url, proc=proc, log_path=log_path)
    finally:
        stop(proc)
