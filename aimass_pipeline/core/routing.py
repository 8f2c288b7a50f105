"""Which model answers a request while a canary or a shadow runs: a stable hash of the entity, not a coin.

A request's entity key is the canonical JSON of its first record (the contract's records carry no id): the same
applicant, sent again, lands in the same bucket and so sees the same model, in every worker and after a restart.
The bucket is the first 8 bytes of sha256(use case, key) as a fraction in [0, 1); a share of s % routes the
buckets below s / 100, so raising the share only adds entities and never moves one back.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def entity_key(record: dict[str, Any]) -> str:
    """The routing key of one record: its canonical JSON (sorted keys), whatever the order it was sent in."""
    return json.dumps(record, sort_keys=True, default=str, separators=(",", ":"))


def bucket(use_case: str, key: str) -> float:
    """A stable number in [0, 1) for ``key`` within ``use_case`` (another use case splits independently)."""
    digest = hashlib.sha256(f"{use_case}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def routes_to_challenger(use_case: str, key: str, share: float) -> bool:
    """True when ``key`` falls in the challenger's ``share`` (percent, 0-100) of ``use_case``'s traffic."""
    if not 0 <= share <= 100:
        raise ValueError(f"share must be a percentage in [0, 100], got {share}")
    return bucket(use_case, key) < share / 100
