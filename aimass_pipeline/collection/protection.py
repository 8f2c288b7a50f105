"""What ingestion needs to keep personal data out of the lake: the pseudonym key, the raw zone's key, and
the subjects erased before (core.erasures). A use case declaring no PII needs none of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.erasures import erased_subjects
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.pseudonyms import open_stream, pseudonym_key, raw_zone_key
from aimass_pipeline.settings import load_settings


@dataclass(frozen=True)
class Protection:
    pii_key: bytes | None = None
    raw_key: bytes | None = None
    erased: dict[str, str] = field(default_factory=dict)


UNPROTECTED = Protection()


def protection(store: Lake, contract: Contract) -> Protection:
    """The keys (from AIMASS_PII_KEY, settings.pii) and erased subjects for ingesting ``contract``'s files."""
    if contract.pii is None:
        return Protection()
    secret = load_settings().pii_key()
    return Protection(pseudonym_key(secret), raw_zone_key(secret), erased_subjects(store, contract.use_case))


def opened_copy(store: Lake, parts: tuple[str, ...], key: bytes | None, workdir: Path) -> Path:
    """A sealed raw-zone file decrypted into ``workdir`` under its own name (readers go by its suffix)."""
    if key is None:
        raise ValueError(f"{store.uri(*parts)} is sealed and the use case declares no PII key to open it")
    target = workdir / "opened" / parts[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    with store.fs.open(store.path(*parts), "rb") as source, target.open("wb") as sink:
        for piece in open_stream(source, key, store.uri(*parts)):
            sink.write(piece)
    return target
