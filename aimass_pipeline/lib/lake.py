"""The data lake: an fsspec URL (a local folder or ``s3://bucket/prefix``) with an immutable raw zone."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field

import fsspec
import pandas as pd

from aimass_pipeline.lib.landing import LandedFile


def storage_options_from_env() -> dict:
    """s3fs options for an S3-compatible lake (endpoint, keys, region) from the environment; {} for AWS
    defaults. Here rather than in settings so a bento, which ships lib/ but not settings.py, reads the same."""
    endpoint = os.environ.get("AIMASS_S3_ENDPOINT_URL")
    if not endpoint:
        return {}
    return {
        "key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "secret": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "client_kwargs": {"endpoint_url": endpoint, "region_name": os.environ.get("AWS_REGION", "us-east-1")},
    }


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
        target = self.path(*parts)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
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
        return pd.read_parquet(io.BytesIO(self.read_bytes(*parts)))

    def raw_batches(self, use_case: str) -> list[dict]:
        """Manifests of every batch in the raw zone, oldest first."""
        base = self.path("raw", use_case)
        if not self.fs.exists(base):
            return []
        manifests = []
        for entry in sorted(self.fs.ls(base, detail=False)):
            manifest = f"{entry}/manifest.json"
            if self.fs.exists(manifest):
                with self.fs.open(manifest, "rb") as handle:
                    manifests.append(json.load(handle))
        return sorted(manifests, key=lambda m: (m["ingested_order"], m["batch_id"]))

    def store_raw_batch(self, use_case: str, landed: LandedFile) -> tuple[dict, bool]:
        """Copy a landed file into the raw zone once; the manifest is written last so a crash
        half-way leaves no batch that looks complete. Returns (manifest, newly_stored)."""
        folder = ("raw", use_case, f"batch={landed.batch_id}")
        if self.exists(*folder, "manifest.json"):
            return json.loads(self.read_bytes(*folder, "manifest.json")), False
        self.write_bytes(landed.path.read_bytes(), *folder, landed.name)
        manifest = {
            "batch_id": landed.batch_id,
            "source_file": landed.name,
            "sha256": landed.sha256,
            "size": landed.size,
            "ingested_order": len(self.raw_batches(use_case)),
            "data_path": self.uri(*folder, landed.name),
        }
        self.write_bytes(json.dumps(manifest, indent=2).encode(), *folder, "manifest.json")
        return manifest, True
