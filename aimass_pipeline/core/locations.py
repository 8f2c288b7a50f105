"""Where landed and quarantined files live: a folder on an fsspec filesystem, a local path or an
``s3://bucket/prefix`` URL, reached through one code path (fsspec's LocalFileSystem for a local folder).

A remote folder's filesystem never caches listings: the sensor runs in a long-lived process while
operators and runs in other processes add and remove objects, and a cached listing would hide them.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Location:
    fs: fsspec.AbstractFileSystem
    path: str  # inside ``fs``: no protocol, no trailing slash

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def storage_options(self) -> dict:
        return {} if self.is_local else dict(self.fs.storage_options)

    @property
    def parent(self) -> Location:
        parent = posixpath.dirname(self.path)
        if not self.is_local and not parent:
            # s3://bucket/landing has the parent s3://bucket; s3://bucket has none to put quarantine beside.
            raise ValueError(f"{self.url()} has no parent folder: use a prefix such as {self.url()}/landing")
        return Location(self.fs, parent)

    def child(self, *parts: str) -> Location:
        return Location(self.fs, "/".join([self.path, *parts]))

    def url(self) -> str:
        return self.path if self.is_local else self.fs.unstrip_protocol(self.path)

    def native(self) -> Path | str:
        """A Path for a local folder (what local callers always had), the URL otherwise."""
        return Path(self.path) if self.is_local else self.url()

    def __str__(self) -> str:
        return self.url()

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def makedirs(self) -> None:
        self.fs.makedirs(self.path, exist_ok=True)

    def entries(self) -> list[dict]:
        """One listing of the folder (a single LIST on S3) with each entry's name, type, size and mtime;
        [] when the folder does not exist."""
        try:
            listed = self.fs.ls(self.path, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return [_entry(info) for info in listed if posixpath.basename(info["name"].rstrip("/"))]

    def open(self, mode: str = "rb") -> IO[bytes]:
        return self.fs.open(self.path, mode)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def write_bytes(self, data: bytes) -> None:
        with self.fs.open(self.path, "wb") as handle:
            handle.write(data)

    def move_to(self, target: Location) -> None:
        """A rename on a local disk; on S3 a server-side copy, then the source is deleted."""
        self.fs.mv(self.path, target.path)

    def remove(self) -> None:
        self.fs.rm_file(self.path)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open() as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()


def _entry(info: dict) -> dict:
    mtime = info.get("mtime")
    if mtime is None:
        modified = info.get("LastModified")
        mtime = modified.timestamp() if isinstance(modified, datetime) else 0.0
    return {
        "name": posixpath.basename(info["name"].rstrip("/")),
        "type": info.get("type"),
        "size": int(info.get("size") or 0),
        "mtime_ns": int(float(mtime) * 1e9),
        # S3 keeps LastModified to the second: the ETag tells a same-size object replaced within it.
        "etag": info.get("ETag"),
    }


def locate(where: Location | Path | str, storage_options: dict | None = None) -> Location:
    """A Location for a local path or an fsspec URL (``storage_options`` for a remote one)."""
    if isinstance(where, Location):
        return where
    text = str(where)
    if "://" not in text:
        return Location(LocalFileSystem(), posixpath.abspath(text))
    fs, path = fsspec.core.url_to_fs(text, use_listings_cache=False, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        return Location(LocalFileSystem(), posixpath.abspath(path))
    return Location(fs, path.rstrip("/"))


def quarantine_location(landing_root: Location | Path | str, use_case: str) -> Location:
    """``<landing root>/../quarantine/<use case>``: AIMASS_HOME/quarantine/<use case> for the default
    AIMASS_HOME/landing, ``s3://bucket/quarantine/<use case>`` for ``s3://bucket/landing``."""
    return locate(landing_root).parent.child("quarantine", use_case)
