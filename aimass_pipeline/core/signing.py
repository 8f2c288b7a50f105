"""HMAC signatures over what must stay a pickle, checked before anything is unpickled.

Unpickling runs whatever code the bytes name, so a pickle is only as trustworthy as everyone who can write
where it lies (the lake, the MLflow artifact store, the Bento model store). Everything AIMass pickles is
signed with a key only the platform holds (``AIMASS_SIGNING_KEY``, read in ``settings/``); a value or model
whose signature does not match is refused before a single byte of it is unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from pathlib import Path
from typing import Any

PICKLE_HEADER = b"AIMASS-SIGNED-PICKLE v1\n"
MANIFEST = "aimass_signature.json"
# Written by MLflow itself when it downloads a registered version (name and version); never loaded as code.
_ADDED_ON_DOWNLOAD = frozenset({"registered_model_meta"})
_MAC_HEX = 64  # HMAC-SHA256


class UntrustedArtifactError(RuntimeError):
    """A pickled value or a model directory whose signature is missing or does not match: not loaded."""


def _key(key: str | bytes | None, what: str) -> bytes:
    if not key:
        raise UntrustedArtifactError(
            f"no signing key to sign or verify {what}: set AIMASS_SIGNING_KEY (the embedded default keeps "
            "one in $AIMASS_HOME/signing.key)"
        )
    return key.encode() if isinstance(key, str) else key


def _mac(key: bytes, context: str, payload: bytes) -> str:
    # The context (an asset's lake path) is signed too: a signed value copied over another asset is refused.
    return hmac.new(key, context.encode() + b"\0" + payload, hashlib.sha256).hexdigest()


def signed_pickle(obj: Any, key: str | bytes | None, context: str) -> bytes:
    """``obj`` pickled, behind a header carrying the HMAC of the payload and ``context``."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return PICKLE_HEADER + _mac(_key(key, context), context, payload).encode() + b"\n" + payload


def load_signed_pickle(blob: bytes, key: str | bytes | None, context: str) -> Any:
    """The object, after its signature is checked; UntrustedArtifactError (nothing unpickled) otherwise."""
    secret = _key(key, context)
    if not blob.startswith(PICKLE_HEADER):
        raise UntrustedArtifactError(
            f"{context} is not a signed AIMass pickle (no signature header): refused unread. A value stored "
            "before signing, or written by someone else: materialise the asset again"
        )
    rest = blob[len(PICKLE_HEADER) :]
    mac, payload = rest[:_MAC_HEX].decode("ascii", "replace"), rest[_MAC_HEX + 1 :]
    if rest[_MAC_HEX : _MAC_HEX + 1] != b"\n" or not hmac.compare_digest(mac, _mac(secret, context, payload)):
        raise UntrustedArtifactError(
            f"{context}: signature does not match its content (altered, or signed with another "
            "AIMASS_SIGNING_KEY): refused unread"
        )
    return pickle.loads(payload)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.name != MANIFEST
        and str(path.relative_to(folder)) not in _ADDED_ON_DOWNLOAD
    }


def _manifest_mac(key: bytes, files: dict[str, str]) -> str:
    return _mac(key, "model-directory", json.dumps(files, sort_keys=True).encode())


def sign_directory(folder: str | Path, key: str | bytes | None) -> Path:
    """Write ``aimass_signature.json``: the sha256 of every file below ``folder`` and an HMAC over them."""
    folder = Path(folder)
    files = _digests(folder)
    target = folder / MANIFEST
    target.write_text(json.dumps({"files": files, "hmac": _manifest_mac(_key(key, str(folder)), files)}))
    return target


def verify_directory(folder: str | Path, key: str | bytes | None, what: str) -> None:
    """Refuse a model directory unless every file in it is exactly what was signed, nothing added."""
    folder = Path(folder)
    secret = _key(key, what)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise UntrustedArtifactError(
            f"{what}: no {MANIFEST} in {folder}; an unsigned model is not loaded (logged before signing, "
            "or not by AIMass): train it again"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        signed, mac = dict(manifest["files"]), str(manifest["hmac"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UntrustedArtifactError(f"{what}: {manifest_path} is unreadable: {exc}") from exc
    if not hmac.compare_digest(mac, _manifest_mac(secret, signed)):
        raise UntrustedArtifactError(
            f"{what}: {manifest_path} does not match its signature (altered, or signed with another "
            "AIMASS_SIGNING_KEY): refused unread"
        )
    found = _digests(folder)
    changed = sorted(name for name in signed.keys() | found.keys() if signed.get(name) != found.get(name))
    if changed:
        raise UntrustedArtifactError(
            f"{what}: file(s) {changed} in {folder} differ from what was signed (altered, added or "
            "removed): refused unread"
        )
