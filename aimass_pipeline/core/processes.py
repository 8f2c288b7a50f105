"""Child processes the platform starts: the venv's executables, and signal handlers they can be stopped by."""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def venv_executable(name: str) -> str:
    """A console script beside this interpreter. Not resolved: a venv's bin/python is a symlink to the base
    interpreter, whose bin holds none of the venv's scripts (and the venv's bin is not always on PATH)."""
    return str(Path(sys.executable).with_name(name))


def reset_signals() -> None:
    """``preexec_fn`` of every child: started from a non-interactive shell, children inherit ignored SIGINT
    and SIGTERM and could then only be stopped by SIGKILL."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
