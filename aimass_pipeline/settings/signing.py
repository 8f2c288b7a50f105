"""The key every pickle AIMass stores is signed with, when ``AIMASS_SIGNING_KEY`` does not give one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE = "signing.key"


def home_signing_key(home: Path) -> str:
    """The home's own key, generated (0600) on first use. Every process that loads what another stored
    (Dagster, the bento, another machine) needs the same key: set ``AIMASS_SIGNING_KEY`` wherever more than
    one home is involved."""
    path = home / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
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
        raise RuntimeError(f"the signing key file {path} is empty: delete it or set AIMASS_SIGNING_KEY")
    return key
