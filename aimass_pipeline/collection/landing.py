"""The landing zone: where operators drop files for a use case, which of them are complete, and how they
are grouped into batches. The zone is a local folder or an ``s3://`` prefix (core/locations.py).

A file is taken once it is *settled*: its size, mtime (and on S3 its ETag) are what the previous sensor
tick recorded, or its mtime is older than the settle window. An S3 object is invisible until its upload is
complete, but the rule still applies: an operator may replace it. Dot-files and temporary suffixes are
uploads in progress and never taken. Small files found together are grouped into one batch (at most
``MAX_BATCH_FILES`` files and ``SMALL_FILE_BYTES`` bytes), so a flood of tiny files makes a handful of
runs; a large file is a batch of its own. A batch of one file keeps the id ``sha256[:16]`` of that file; a
group's id hashes the sorted member hashes, so the same files always make the same batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import fsspec

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.locations import Location, locate

LANDED_SUFFIXES = (".csv", ".jsonl", ".parquet", ".zip", ".tar")
# What upload tools, browsers and copy programs name a file while it is still being written.
INCOMPLETE_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".uploading")
SETTLE_S = 10.0
SMALL_FILE_BYTES = 8 << 20
MAX_BATCH_FILES = 100
MAX_BATCHES_PER_TICK = 10


@dataclass(frozen=True)
class LandedFile:
    """A landed file as listed: ``path`` is a Path in a local zone, the object's URL in a remote one,
    where ``fs`` is the filesystem that reaches it."""

    name: str
    path: Path | str
    sha256: str
    size: int
    fs: fsspec.AbstractFileSystem | None = field(default=None, compare=False, repr=False)

    @property
    def batch_id(self) -> str:
        return self.sha256[:16]

    def source(self) -> Location:
        if self.fs is None:
            return locate(self.path)
        return Location(self.fs, self.fs._strip_protocol(str(self.path)))


def landed_file(folder: Location, name: str, sha256: str, size: int) -> LandedFile:
    where = folder.child(name)
    return LandedFile(name, where.native(), sha256, size, None if folder.is_local else folder.fs)


@dataclass(frozen=True)
class Batch:
    """Landed files ingested together as one partition of the collection asset. ``attempt`` counts the
    retries from quarantine of its files, so a retried batch is a new run (quarantine.retry)."""

    batch_id: str
    members: tuple[LandedFile, ...]
    attempt: int = 0


def batch_id_for(hashes: list[str]) -> str:
    if len(hashes) == 1:
        return hashes[0][:16]
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:16]


def file_sha256(path: Location | Path | str) -> str:
    return locate(path).sha256()


def is_candidate_name(name: str) -> bool:
    """A data file by its name, not an upload in progress; says nothing about whether it is complete."""
    return (
        not name.startswith(".")
        and not name.lower().endswith(INCOMPLETE_SUFFIXES)
        and Path(name).suffix.lower() in LANDED_SUFFIXES
    )


def _candidates(folder: Location) -> list[dict]:
    return sorted(
        (e for e in folder.entries() if e["type"] == "file" and is_candidate_name(e["name"])),
        key=lambda e: e["name"],
    )


def list_landed_files(landing_dir: Location | Path | str) -> list[LandedFile]:
    """Every data file in the landing zone by name, hashed, whether settled or not."""
    folder = locate(landing_dir)
    files = []
    for entry in _candidates(folder):
        try:
            sha256 = folder.child(entry["name"]).sha256()
        except FileNotFoundError:
            # Moved away while listing (a run quarantined it): a sensor tick must not fail for that.
            continue
        files.append(landed_file(folder, entry["name"], sha256, entry["size"]))
    return files


def taken_key(sha256: str, attempt: int) -> str:
    return sha256 if not attempt else f"{sha256}@{attempt}"


@dataclass
class LandingCursor:
    """What a tick leaves for the next: each file's size, mtime, hash (once settled) and ETag, and the
    files (hash, with the retry attempt once retried) a run was requested for. Only files still in the
    landing zone are kept, so it stays small."""

    files: dict[str, list] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)

    def to_json(self) -> str:
        return json.dumps({"files": self.files, "taken": sorted(self.taken)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        data = json.loads(text)
        if "files" not in data:
            # The cursor before batching: {sha256: name} of every file a run was requested for.
            return cls(taken=set(data))
        return cls(files=data["files"], taken=set(data["taken"]))


def _settled_files(folder: Location, before: LandingCursor, now: float, settle_s: float):
    files: dict[str, list] = {}
    settled: list[tuple[int, str, LandedFile]] = []
    for entry in _candidates(folder):
        name, size, mtime_ns, etag = entry["name"], entry["size"], entry["mtime_ns"], entry["etag"]
        known = before.files.get(name)
        unchanged = (
            known is not None
            and known[:2] == [size, mtime_ns]
            and (known[3] if len(known) > 3 else None) == etag
        )
        if not unchanged and now - mtime_ns / 1e9 < settle_s:
            # Still being written, or too new to tell: look again next tick.
            files[name] = [size, mtime_ns, None, etag]
            continue
        try:
            sha256 = known[2] if unchanged and known[2] else folder.child(name).sha256()
        except FileNotFoundError:
            continue
        files[name] = [size, mtime_ns, sha256, etag]
        settled.append((mtime_ns, name, landed_file(folder, name, sha256, size)))
    return files, settled


def group_batches(files: list[LandedFile], small_file_bytes: int, max_batch_files: int) -> list[Batch]:
    """Arrival-ordered files into batches: each large file alone, runs of small files together."""

    def batch(members: list[LandedFile]) -> Batch:
        return Batch(batch_id_for([m.sha256 for m in members]), tuple(members))

    batches: list[Batch] = []
    group: list[LandedFile] = []
    group_bytes = 0
    for landed in files:
        full = len(group) >= max_batch_files or group_bytes + landed.size > small_file_bytes
        if group and (landed.size >= small_file_bytes or full):
            batches.append(batch(group))
            group, group_bytes = [], 0
        if landed.size >= small_file_bytes:
            batches.append(batch([landed]))
            continue
        group.append(landed)
        group_bytes += landed.size
    if group:
        batches.append(batch(group))
    return batches


def plan_batches(
    landing_dir: Location | Path | str,
    cursor: LandingCursor | None,
    stored: set[str],
    *,
    retries: dict[str, int] | None = None,
    settle_s: float = SETTLE_S,
    now: float | None = None,
    small_file_bytes: int = SMALL_FILE_BYTES,
    max_batch_files: int = MAX_BATCH_FILES,
    max_batches: int = MAX_BATCHES_PER_TICK,
) -> tuple[list[Batch], LandingCursor]:
    """The new batches to ingest now and the cursor for the next tick.

    A file is new when its hash is neither in the raw zone (``stored``) nor taken by an earlier tick,
    so a renamed copy, a restart and a lost cursor all add nothing. ``retries`` (sha256 -> times put
    back from quarantine) makes a retried file new again, also when the retry came between two ticks.
    Batches beyond ``max_batches`` are left for later ticks."""
    before = cursor or LandingCursor()
    attempts = retries or {}
    folder = locate(landing_dir)
    files, settled = _settled_files(folder, before, time.time() if now is None else now, settle_s)
    fresh: dict[str, LandedFile] = {}
    for _, _, landed in sorted(settled, key=lambda item: (item[0], item[1])):
        key = taken_key(landed.sha256, attempts.get(landed.sha256, 0))
        if key not in before.taken and landed.sha256 not in stored:
            fresh.setdefault(landed.sha256, landed)
    batches = [
        replace(b, attempt=sum(attempts.get(m.sha256, 0) for m in b.members))
        for b in group_batches(list(fresh.values()), small_file_bytes, max_batch_files)[:max_batches]
    ]
    present = {taken_key(entry[2], attempts.get(entry[2], 0)) for entry in files.values() if entry[2]}
    now_taken = {taken_key(m.sha256, attempts.get(m.sha256, 0)) for b in batches for m in b.members}
    return batches, LandingCursor(files=files, taken=(before.taken | now_taken) & present)


def seed_landing_zone(
    landing_dir: Location | Path | str, contract: Contract, source: str, *, image_files: bool = False
) -> Path | str | None:
    """Land a packaged data set as the first batch when the zone has never held a file: a CSV, or with
    ``image_files`` a zip of PNG files and their labels."""
    from aimass_pipeline.collection.datasets import packaged_archive, packaged_frame

    folder = locate(landing_dir)
    folder.makedirs()
    if folder.entries():
        return None
    target = folder.child(f"{contract.use_case}_0001.{'zip' if image_files else 'csv'}")
    partial = folder.child(f".{target.name}.partial")
    if image_files:
        partial.write_bytes(packaged_archive(source, contract))
    else:
        partial.write_bytes(packaged_frame(source, contract).to_csv(index=False).encode("utf-8"))
    partial.move_to(target)
    return target.native()
