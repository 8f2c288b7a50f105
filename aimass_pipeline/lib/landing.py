"""The landing zone: where operators drop files for a use case, which of them are complete, and how they
are grouped into batches.

A file is taken once it is *settled*: its size and mtime are what the previous sensor tick recorded, or
its mtime is older than the settle window. Dot-files and temporary suffixes are uploads in progress and
never taken. Small files found together are grouped into one batch (at most ``MAX_BATCH_FILES`` files and
``SMALL_FILE_BYTES`` bytes), so a flood of tiny files makes a handful of runs; a large file is a batch of
its own. A batch of one file keeps the id ``sha256[:16]`` of that file; a group's id hashes the sorted
member hashes, so the same files always make the same batch.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aimass_pipeline.lib.contracts import Contract
from aimass_pipeline.lib.errors import DataContractError

LANDED_SUFFIXES = (".csv", ".jsonl", ".parquet")
# What upload tools, browsers and copy programs name a file while it is still being written.
INCOMPLETE_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".uploading")
SETTLE_S = 10.0
SMALL_FILE_BYTES = 8 << 20
MAX_BATCH_FILES = 100
MAX_BATCHES_PER_TICK = 10


@dataclass(frozen=True)
class LandedFile:
    name: str
    path: Path
    sha256: str
    size: int

    @property
    def batch_id(self) -> str:
        return self.sha256[:16]


@dataclass(frozen=True)
class Batch:
    """Landed files ingested together as one partition of the collection asset."""

    batch_id: str
    members: tuple[LandedFile, ...]


def batch_id_for(hashes: list[str]) -> str:
    if len(hashes) == 1:
        return hashes[0][:16]
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_candidate(path: Path) -> bool:
    """A data file by its name, not an upload in progress; says nothing about whether it is complete."""
    name = path.name
    return (
        not name.startswith(".")
        and not name.lower().endswith(INCOMPLETE_SUFFIXES)
        and path.suffix.lower() in LANDED_SUFFIXES
        and path.is_file()
    )


def list_landed_files(landing_dir: Path) -> list[LandedFile]:
    """Every data file in the landing zone by name, hashed, whether settled or not."""
    if not landing_dir.is_dir():
        return []
    files = []
    for path in sorted(landing_dir.iterdir()):
        if not is_candidate(path):
            continue
        try:
            files.append(LandedFile(path.name, path, file_sha256(path), path.stat().st_size))
        except FileNotFoundError:
            # Moved away while listing (a run quarantined it): a sensor tick must not fail for that.
            continue
    return files


@dataclass
class LandingCursor:
    """What a tick leaves for the next: each file's size, mtime and (once settled) hash, and the hashes
    a run was requested for. Only files still in the landing zone are kept, so it stays small."""

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


def _settled_files(landing_dir: Path, before: LandingCursor, now: float, settle_s: float):
    files: dict[str, list] = {}
    settled: list[tuple[int, str, LandedFile]] = []
    if not landing_dir.is_dir():
        return files, settled
    for path in sorted(landing_dir.iterdir()):
        try:
            if not is_candidate(path):
                continue
            stat = path.stat()
            size, mtime_ns = stat.st_size, stat.st_mtime_ns
            known = before.files.get(path.name)
            unchanged = known is not None and known[0] == size and known[1] == mtime_ns
            if not unchanged and now - mtime_ns / 1e9 < settle_s:
                # Still being written, or too new to tell: look again next tick.
                files[path.name] = [size, mtime_ns, None]
                continue
            sha256 = known[2] if unchanged and known[2] else file_sha256(path)
        except FileNotFoundError:
            continue
        files[path.name] = [size, mtime_ns, sha256]
        settled.append((mtime_ns, path.name, LandedFile(path.name, path, sha256, size)))
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
    landing_dir: Path,
    cursor: LandingCursor | None,
    stored: set[str],
    *,
    settle_s: float = SETTLE_S,
    now: float | None = None,
    small_file_bytes: int = SMALL_FILE_BYTES,
    max_batch_files: int = MAX_BATCH_FILES,
    max_batches: int = MAX_BATCHES_PER_TICK,
) -> tuple[list[Batch], LandingCursor]:
    """The new batches to ingest now and the cursor for the next tick.

    A file is new when its hash is neither in the raw zone (``stored``) nor taken by an earlier tick,
    so a renamed copy, a restart and a lost cursor all add nothing. Batches beyond ``max_batches`` are
    left for later ticks."""
    before = cursor or LandingCursor()
    files, settled = _settled_files(landing_dir, before, time.time() if now is None else now, settle_s)
    fresh: dict[str, LandedFile] = {}
    for _, _, landed in sorted(settled, key=lambda item: (item[0], item[1])):
        if landed.sha256 not in before.taken and landed.sha256 not in stored:
            fresh.setdefault(landed.sha256, landed)
    batches = group_batches(list(fresh.values()), small_file_bytes, max_batch_files)[:max_batches]
    present = {entry[2] for entry in files.values() if entry[2]}
    taken = (before.taken | {m.sha256 for b in batches for m in b.members}) & present
    return batches, LandingCursor(files=files, taken=taken)


def seed_landing_zone(landing_dir: Path, contract: Contract, source: str) -> Path | None:
    """Land a packaged data set as the first batch when the zone has never held a file."""
    from aimass_pipeline.lib.datasets import packaged_frame

    landing_dir.mkdir(parents=True, exist_ok=True)
    if any(landing_dir.iterdir()):
        return None
    target = landing_dir / f"{contract.use_case}_0001.csv"
    partial = landing_dir / f".{target.name}.partial"
    packaged_frame(source, contract).to_csv(partial, index=False)
    partial.rename(target)
    return target


def as_csv_bytes(name: str, data: bytes) -> bytes:
    """A landed JSON Lines or Parquet file as the CSV text read_raw_batch parses, so every format meets
    the same contract rules; nested JSON objects become ``parent_child`` columns. CSV passes unchanged."""
    suffix = Path(name).suffix.lower()
    if suffix not in (".jsonl", ".parquet"):
        return data
    if not data.strip():
        raise DataContractError("the file is empty", source=name, rule="file.empty")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
            if not all(isinstance(r, dict) for r in records):
                raise ValueError("every line must be a JSON object")
            frame = pd.json_normalize(records, sep="_")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataContractError(
            f"not a readable {suffix[1:]} file: {exc}", source=name, rule="file.parse"
        ) from exc
    return frame.to_csv(index=False).encode("utf-8")
