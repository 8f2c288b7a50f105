"""The PII key (``AIMASS_PII_KEY``): pseudonyms and the raw zone's encryption derive from it (core.pseudonyms).

Locally a key is generated on first use and kept in ``AIMASS_HOME`` (mode 0600). Under prod there is no
such fallback: a deployment whose specs declare PII refuses to start without the variable, because a key
made up on one machine would give the same person other pseudonyms on the next.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE = "pii.key"
ENV = "AIMASS_PII_KEY"


def home_pii_key(home: Path) -> str:
    """The home's own key, created 0600 on first use; a hard link makes two racing processes agree."""
    path = home / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"the PII key file {path} is empty: delete it or set {ENV}")
    return key


def missing_key_message(use_cases: list[str]) -> str:
    return (
        f"AIMASS_ENV=prod and the use case(s) {', '.join(sorted(use_cases))} declare PII (data.pii), but "
        f"{ENV} is not set: set it to the deployment's secret (the same on every machine; "
        "`python -c 'import secrets; print(secrets.token_hex(32))'` makes one) and start again"
    )
