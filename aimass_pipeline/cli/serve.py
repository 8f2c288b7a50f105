"""`aimass serve`: the use case's newest bento in the foreground, signals forwarded to it."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from typing import Any

from aimass_pipeline.core.processes import reset_signals
from aimass_pipeline.deployment.bento import NoBentoError, bentoml_executable, latest_bento_tag
from aimass_pipeline.settings import Settings

log = logging.getLogger(__name__)


def serve_command(settings: Settings, use_case: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """argv that serves the use case's newest bento; run it with ``settings.child_env()``."""
    tag = latest_bento_tag(settings, use_case)
    if tag is None:
        raise NoBentoError(f"no bento built for {use_case!r} under {settings.bentoml_home}; build one first")
    return [*bentoml_executable(), "serve", tag, "--host", host, "--port", str(port)]


def serve(settings: Settings, use_case: str, port: int, host: str = "127.0.0.1") -> int:
    """Serve the use case's newest bento in the foreground until it exits; return its exit code."""
    cmd = serve_command(settings, use_case, port, host)
    log.info("serving on http://%s:%d: %s", host, port, " ".join(cmd))
    # Its own session, and we forward SIGINT/SIGTERM: a terminal's Ctrl-C then reaches the server once
    # (not twice, through the shared process group), and a SIGTERM for us (docker stop, systemd) stops
    # the server instead of killing us and orphaning it.
    proc = subprocess.Popen(cmd, env=settings.child_env(), preexec_fn=reset_signals, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
