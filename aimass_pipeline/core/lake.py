"""The data lake: an fsspec URL (a local folder or ``s3://bucket/prefix``) with an immutable raw zone.

Raw zone: ``raw/<use case>/batch=<batch id>/`` holds the batch's landed files under their own names and
one ``manifest.json`` listing them (``members``: source_file, sha256, size, data_path) with the batch's
``ingested_order``. The manifest is written last: a folder without one is not a stored batch. Each file
content (sha256) is stored once per use case, whichever batch it came in.

Two processes may store the same batch at once (the landing sensor's run and `aimass ingest`): both copy the
same bytes (each file appears whole, never truncated by the other), and the batch's ``ingested_order`` is
claimed by a create-if-absent write of ``raw/<use case>/_orders/<order>`` naming the batch
(core/exclusive.py). The one claim per batch decides: one order, one ``newly_stored``, one manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import fsspec
from fsspec.implementations.local import LocalFileSystem

from aimass_pipeline.core.exclusive import create_exclusive, replace_local
from aimass_pipeline.core.locations import Location
from aimass_pipeline.core.pseudonyms import stored_pieces

if TYPE_CHECKING:
    import pandas as pd

# (endpoint options, manifest URL) -> the manifest's bytes; manifests are immutable once written.
_MANIFESTS: dict[tuple[str, str], bytes] = {}
_MAX_CACHED_MANIFESTS = 100_000


class LandedFileChanged(RuntimeError):
    """A landed file's bytes differ from those the sensor hashed: it was replaced while being read."""


class LandedFile(Protocol):
    """A file the raw zone takes in: its name, the sha256 and size it was listed with, and where to read it."""

    name: str
    sha256: str
    size: int

    @property
    def path(self) -> object: ...

    def source(self) -> Location: ...


@dataclass
class Lake:
    url: str
    storage_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = self.root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def uri(self, *parts: str) -> str:
        return self.fs.unstrip_protocol(self.path(*parts))

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Write whole or not at all: a process killed mid-write leaves the old bytes (or nothing), never a
        truncated asset. Locally under a private name renamed into place; an S3 object appears on completion."""
        target = self.path(*parts)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        if isinstance(self.fs, LocalFileSystem):
            replace_local(target, lambda handle: handle.write(data))
            return target
        with self.fs.open(target, "wb") as handle:
            handle.write(data)
        return target

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open(self.path(*parts), "rb") as handle:
            return handle.read()

    def write_parquet(self, frame: pd.DataFrame, *parts: str) -> str:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return self.write_bytes(buffer.getvalue(), *parts)

    def read_parquet(self, *parts: str) -> pd.DataFrame:
        import pandas as pd  # here, not at the top: the CLI's audit trail uses the lake without pandas

        return pd.read_parquet(io.BytesIO(self.read_bytes(*parts)))

    def _manifest(self, path: str) -> dict | None:
        """The manifest at ``path`` (inside the lake's filesystem), None when there is none. A manifest is
        written last and never changed, so once read it is kept in this process: a sensor tick on S3
        then costs one listing of the raw zone, not a GET per stored batch."""
        key = (
            json.dumps(self.storage_options.get("client_kwargs", {}), sort_keys=True),
            self.fs.unstrip_protocol(path),
        )
        data = _MANIFESTS.get(key)
        if data is None:
            try:
                # cat_file is a plain GET: no cached listing (stale in a long-lived process) decides.
                data = self.fs.cat_file(path)
            except FileNotFoundError:
                return None
            if len(_MANIFESTS) >= _MAX_CACHED_MANIFESTS:
                _MANIFESTS.clear()
            _MANIFESTS[key] = data
        return json.loads(data)

    def raw_manifest(self, use_case: str, batch_id: str) -> dict | None:
        """The manifest of a stored batch, or None when the raw zone does not hold it (complete)."""
        return self._manifest(self.path("raw", use_case, f"batch={batch_id}", "manifest.json"))

    def raw_batches(self, use_case: str) -> list[dict]:
        """Manifests of every batch in the raw zone, oldest first."""
        try:
            # refresh: other processes store batches; a listing cached by s3fs would never show them.
            entries = self.fs.ls(self.path("raw", use_case), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        folders = sorted(
            e.rstrip("/") for e in entries if e.rstrip("/").rsplit("/", 1)[-1].startswith("batch=")
        )
        manifests = [self._manifest(f"{folder}/manifest.json") for folder in folders]
        return sorted(
            (m for m in manifests if m is not None), key=lambda m: (m["ingested_order"], m["batch_id"])
        )

    def stored_hashes(self, use_case: str) -> dict[str, str]:
        """sha256 of every file in the raw zone -> the batch holding it."""
        return {
            m["sha256"]: manifest["batch_id"]
            for manifest in self.raw_batches(use_case)
            for m in members(manifest)
        }

    def _copy_in(self, landed: LandedFile, target: str, seal_key: bytes | None) -> None:
        """Stream a landed file into the lake (sealed under ``seal_key`` when given: core.pseudonyms),
        hashing what was read; never holds the file in memory. Locally under a private name renamed into
        place once its hash is right; an S3 PUT is atomic."""
        digest = hashlib.sha256()

        def copy(sink) -> None:
            with landed.source().open("rb") as source:
                for chunk in stored_pieces(source, digest, seal_key):
                    sink.write(chunk)
            check()

        def check() -> None:
            if digest.hexdigest() != landed.sha256:
                raise self._changed(landed, digest.hexdigest())

        if isinstance(self.fs, LocalFileSystem):
            replace_local(target, copy)
            return
        with self.fs.open(target, "wb") as sink:
            copy(sink)

    @staticmethod
    def _changed(landed: LandedFile, seen: str) -> LandedFileChanged:
        return LandedFileChanged(
            f"{landed.path} changed after it was listed: sha256 {landed.sha256[:16]}... when listed, "
            f"{seen[:16]}... when copied (replaced or still being written). Nothing was "
            "stored; the file stays in the landing zone and a later tick takes its new bytes."
        )

    def _orders(self, use_case: str) -> dict[int, str]:
        """Every claimed ingested order -> the batch holding it (claims are immutable, so cached)."""
        folder = self.path("raw", use_case, "_orders")
        try:
            entries = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return {}
        claims = {}
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.isdigit():
                claims[int(name)] = self._claim(entry)
        return claims

    def _claim(self, path: str) -> str:
        key = (
            json.dumps(self.storage_options.get("client_kwargs", {}), sort_keys=True),
            "claim:" + self.fs.unstrip_protocol(path),
        )
        if key not in _MANIFESTS:
            _MANIFESTS[key] = self.fs.cat_file(path)
        return _MANIFESTS[key].decode()

    def claim_order(self, use_case: str, batch_id: str) -> tuple[int, bool]:
        """The batch's ingested order, claimed atomically: (order, True) for the one call that claimed it,
        (its order, False) for every other, concurrent or later. Orders only grow; a batch whose store
        failed after its claim keeps it (a later store of the same batch reuses it)."""
        while True:
            claims = self._orders(use_case)
            if not claims:
                # Batches stored before claims existed hold orders 0..n-1 in their manifests. Count them, then
                # list the claims again: a manifest written under a claim appears only after its claim, so
                # claims still empty means every manifest counted was one of those, not a racer's just stored.
                legacy = len(self.raw_batches(use_case))
                claims = self._orders(use_case)
            for order, holder in sorted(claims.items()):
                if holder == batch_id:
                    return order, False
            order = max(claims) + 1 if claims else legacy
            if create_exclusive(
                self.fs, self.path("raw", use_case, "_orders", f"{order:09d}"), batch_id.encode()
            ):
                return order, True

    def store_raw_batch(
        self, use_case: str, batch_id: str, landed: list[LandedFile], seal_key: bytes | None = None
    ) -> tuple[dict, bool]:
        """Copy a batch's landed files into the raw zone once, with one manifest listing them, written
        last so a crash half-way leaves no batch that looks complete. Returns (manifest, newly_stored).
        Raises LandedFileChanged, storing nothing, when a file's bytes are not those listed."""
        existing = self.raw_manifest(use_case, batch_id)
        if existing is not None:
            return existing, False
        folder = ("raw", use_case, f"batch={batch_id}")
        self.fs.makedirs(self.path(*folder), exist_ok=True)
        try:
            for file in landed:
                self._copy_in(file, self.path(*folder, file.name), seal_key)
        except BaseException:
            # Unless another process got as far as claiming the batch: its copies are the same bytes.
            claimed = batch_id in self._orders(use_case).values()
            if not claimed and self.fs.exists(self.path(*folder)):
                self.fs.rm(self.path(*folder), recursive=True)
            raise
        order, claimed = self.claim_order(use_case, batch_id)
        manifest = {
            "batch_id": batch_id,
            "members": [
                {
                    "source_file": file.name,
                    "sha256": file.sha256,
                    "size": file.size,
                    "data_path": self.uri(*folder, file.name),
                    **({"sealed": "aes-256-gcm"} if seal_key is not None else {}),
                }
                for file in landed
            ],
            "ingested_order": order,
        }
        if len(landed) == 1:
            # The one-file form readers of the layout before batching know (lineage, older tools).
            manifest.update(
                {k: manifest["members"][0][k] for k in ("source_file", "sha256", "size", "data_path")}
            )
        # Every process that stores the batch writes these same bytes, each write whole (never truncated).
        self.write_bytes(json.dumps(manifest, indent=2).encode(), *folder, "manifest.json")
        return manifest, claimed

    def rewrite_manifest(self, use_case: str, manifest: dict) -> None:
        """Replace a batch's manifest: only erasure does (privacy.raw_zone), after rewriting its files."""
        parts = ("raw", use_case, f"batch={manifest['batch_id']}", "manifest.json")
        self.write_bytes(json.dumps(manifest, indent=2).encode(), *parts)
        url = self.fs.unstrip_protocol(self.path(*parts))
        for cached in [k for k in _MANIFESTS if k[1] == url]:
            del _MANIFESTS[cached]


def members(manifest: dict) -> list[dict]:
    """The files of a stored batch; a manifest from before batching describes its one file at top level."""
    if "members" in manifest:
        return manifest["members"]
    return [{k: manifest[k] for k in ("source_file", "sha256", "size", "data_path")}]
