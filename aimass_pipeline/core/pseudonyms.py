"""The PII key's two uses, kept apart: pseudonyms (HMAC) and the raw zone's encryption at rest (AES-GCM).

Both keys are derived from the one secret ``AIMASS_PII_KEY`` (read in ``settings.pii``) with HKDF under
different labels, so an operator holds one secret and neither use can stand in for the other.

A sealed raw file is framed so it can be written and read in 1 MiB pieces: ``MAGIC`` + an 8-byte random
nonce prefix, then per piece a 4-byte length and its AES-GCM ciphertext. A piece's nonce is the prefix plus
its index, and its associated data says whether it is the last piece: pieces cannot be reordered, dropped
or cut off without the tag failing.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"AIMASS-SEALED-1\n"
PIECE = 1 << 20


class SealError(ValueError):
    """A sealed file that this key cannot open: the wrong key, or bytes changed since it was sealed."""


def _derive(secret: str, label: bytes) -> bytes:
    if not secret:
        raise ValueError("the PII key is empty")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret.encode())


def pseudonym_key(secret: str) -> bytes:
    return _derive(secret, b"aimass pseudonyms v1")


def raw_zone_key(secret: str) -> bytes:
    return _derive(secret, b"aimass raw zone v1")


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">Q?", index, last)


def seal_stream(source: BinaryIO, key: bytes) -> Iterator[bytes]:
    """The sealed bytes of ``source``, piece by piece (never the whole file in memory)."""
    aead, prefix = AESGCM(key), os.urandom(8)
    yield MAGIC + prefix
    index, piece = 0, source.read(PIECE)
    while True:
        following = source.read(PIECE)
        last = not following
        sealed = aead.encrypt(prefix + struct.pack(">I", index), piece, _aad(index, last))
        yield struct.pack(">I", len(sealed)) + sealed
        if last:
            return
        index, piece = index + 1, following


def open_stream(source: BinaryIO, key: bytes, name: str = "sealed file") -> Iterator[bytes]:
    """The plain bytes of a sealed file, piece by piece; SealError when the key or the bytes are wrong."""
    head = source.read(len(MAGIC) + 8)
    if not head.startswith(MAGIC):
        raise SealError(f"{name} is not a sealed AIMass file")
    aead, prefix, index = AESGCM(key), head[len(MAGIC) :], 0
    size = source.read(4)
    while size:
        sealed = source.read(struct.unpack(">I", size)[0])
        size = source.read(4)
        try:
            yield aead.decrypt(prefix + struct.pack(">I", index), sealed, _aad(index, not size))
        except InvalidTag:
            raise SealError(
                f"{name}: piece {index} does not open with this key (AIMASS_PII_KEY differs from the one "
                "it was sealed with, or the file was altered)"
            ) from None
        index += 1


def is_sealed(head: bytes) -> bool:
    return head.startswith(MAGIC)


class _Hashing:
    """A reader that hashes what passes through it: the raw zone checks the landed bytes, not the sealed."""

    def __init__(self, source: BinaryIO, digest) -> None:
        self.source, self.digest = source, digest

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        return data


def stored_pieces(source: BinaryIO, digest, key: bytes | None) -> Iterator[bytes]:
    """What the raw zone stores of ``source``: its bytes, sealed under ``key`` when one is given;
    ``digest`` sees the plain bytes either way."""
    reader = _Hashing(source, digest)
    if key is not None:
        yield from seal_stream(reader, key)
        return
    yield from iter(lambda: reader.read(PIECE), b"")
