"""A process killed while it writes an asset to a local lake (a Celery worker's SIGKILL) leaves no
half-written file under the asset's name: the next reader finds the old value or none."""

import signal
import subprocess
import sys
import time
from pathlib import Path

WRITER = """
import sys
from aimass_pipeline.core.lake import Lake
Lake(sys.argv[1]).write_bytes(b"x" * 400_000_000, "assets", "uc", "big.pkl")
"""


def test_a_writer_killed_mid_write_leaves_no_partial_asset(tmp_path: Path) -> None:
    target = tmp_path / "lake" / "assets" / "uc" / "big.pkl"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "lake")])
    deadline = time.monotonic() + 60
    folder = target.parent
    while not (folder.exists() and any(p.stat().st_size > 0 for p in folder.iterdir())):
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.005)
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    assert not target.exists() or target.stat().st_size == 400_000_000, (
        f"a half-written asset under its own name: {target.stat().st_size} bytes"
    )
