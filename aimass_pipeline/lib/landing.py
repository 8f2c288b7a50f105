"""The landing zone: where operators drop files for a use case, and its first batch."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aimass_pipeline.lib.contracts import Contract
from aimass_pipeline.lib.errors import DataContractError

LANDED_SUFFIXES = (".csv", ".jsonl", ".parquet")


@dataclass(frozen=True)
class LandedFile:
    name: str
    path: Path
    sha256: str
    size: int

    @property
    def batch_id(self) -> str:
        return self.sha256[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_landed_files(landing_dir: Path) -> list[LandedFile]:
    """Files ready for ingestion, oldest name first; dot-files are uploads still in progress."""
    if not landing_dir.is_dir():
        return []
    files = []
    for path in sorted(landing_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in LANDED_SUFFIXES:
            continue
        try:
            files.append(LandedFile(path.name, path, file_sha256(path), path.stat().st_size))
        except FileNotFoundError:
            # Moved away while listing (a run quarantined it): a sensor tick must not fail for that.
            continue
    return files


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
