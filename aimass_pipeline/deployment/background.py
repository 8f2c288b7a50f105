"""Building a champion's bento in a detached process, for the CLI's promote and rollback: the command returns
without importing MLflow or BentoML, which the child pays for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from aimass_pipeline.settings import Settings


def start_bento_build(settings: Settings, use_case: str) -> Path:
    """Build the champion's bento in a detached process (it outlives the command); returns its log file."""
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / f"bento-{use_case}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    code = (
        "import sys; from aimass_pipeline.deployment.bento import build_champion_bento; "
        "from aimass_pipeline.settings import load_settings; "
        "print(build_champion_bento(load_settings(), sys.argv[1]), flush=True)"
    )
    with open(log_file, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-c", code, use_case],
            env=settings.child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return log_file
