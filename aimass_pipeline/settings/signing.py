"""The key every pickle AIMass stores is signed with, when ``AIMASS_SIGNING_KEY`` does not give one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE = "signing.key"


def home_secret(home: Path, file_name: str, env: str) -> str:
    """A secret kept in the home (``file_name``, mode 0600), generated on first use, for when ``env`` gives
    none. Every process that reads what another wrote (Dagster, the bento, another machine) needs the same
    secret: set ``env`` wherever more than one home is involved."""
    path = home / file_name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{file_name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            # A hard link appears complete or not at all, and fails if another process won the race: two
            # processes starting on a fresh home never use two keys, nor read a half-written one.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"the key file {path} is empty: delete it or set {env}")
    return key


def home_signing_key(home: Path) -> str:
    return home_secret(home, KEY_FILE, "AIMASS_SIGNING_KEY")
