"""The PII key (``AIMASS_PII_KEY``): pseudonyms and the raw zone's encryption derive from it (core.pseudonyms).

Locally a key is generated on first use and kept in ``AIMASS_HOME`` (mode 0600). Under prod there is no
such fallback: a deployment whose specs declare PII refuses to start without the variable, because a key
made up on one machine would give the same person other pseudonyms on the next.
"""

from __future__ import annotations

from pathlib import Path

from aimass_pipeline.settings.signing import home_secret

KEY_FILE = "pii.key"
ENV = "AIMASS_PII_KEY"


def home_pii_key(home: Path) -> str:
    return home_secret(home, KEY_FILE, ENV)


def missing_key_message(use_cases: list[str]) -> str:
    return (
        f"AIMASS_ENV=prod and the use case(s) {', '.join(sorted(use_cases))} declare PII (data.pii), but "
        f"{ENV} is not set: set it to the deployment's secret (the same on every machine; "
        "`python -c 'import secrets; print(secrets.token_hex(32))'` makes one) and start again"
    )
