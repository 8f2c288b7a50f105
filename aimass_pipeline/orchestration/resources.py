"""Typed resources every stage shares (the lake and its IO manager, the landing and labels zones, MLflow);
values come from the environment at run time only. A stage's own resources live in its ``resources.py``."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from dagster import (
    ConfigurableIOManager,
    ConfigurableResource,
    InputContext,
    OutputContext,
    ResourceDependency,
)
from mlflow.tracking import MlflowClient

from aimass_pipeline.core import audit, registry
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.locations import Location, locate, quarantine_location
from aimass_pipeline.core.scan import ScanTable, merge_files, parquet_rows
from aimass_pipeline.core.signing import load_signed_pickle, signed_pickle
from aimass_pipeline.models import SKOPS_TRUSTED_TYPES
from aimass_pipeline.settings import load_settings


def _signing_key(configured: str | None) -> str:
    # EnvVar("AIMASS_SIGNING_KEY") in the code location; a resource built without it (tests, scripts) uses
    # the key the settings resolve, which is the same one.
    return configured or load_settings().signing_key()


class LakeResource(ConfigurableResource):
    """The data lake: a local folder or an ``s3://`` URL (credentials from the AWS_* variables)."""

    url: str

    def lake(self) -> Lake:
        options = load_settings().storage_options if self.url.startswith("s3://") else {}
        return Lake(self.url, options)

    def record_audit(self, action: str, use_case: str, evidence: dict, who: str) -> dict:
        """An automatic action on the audit trail: in this lake, and in PostgreSQL under prod."""
        return audit.record(
            self.lake(), action=action, use_case=use_case, evidence=evidence, who=who,
            pg_url=load_settings().audit_pg_url,
        )  # fmt: skip


def _zone(root: str) -> Location:
    """A folder operators drop files into: local, or remote with the lake's credentials."""
    return locate(root, load_settings().storage_options if "://" in root else {})


class LandingZoneResource(ConfigurableResource):
    """Where operators drop files, one folder per use case: a local folder or an ``s3://`` prefix
    (credentials as the lake's); refused files go to ``<root>/../quarantine/<use case>``."""

    root: str

    def location(self, use_case: str) -> Location:
        return _zone(self.root).child(use_case)

    def quarantine(self, use_case: str) -> Location:
        return quarantine_location(_zone(self.root), use_case)


class LabelsZoneResource(ConfigurableResource):
    """Where true outcomes land, one folder per use case: a local folder or an ``s3://`` prefix."""

    root: str

    def location(self, use_case: str) -> Location:
        return _zone(self.root).child(use_case)


class MlflowResource(ConfigurableResource):
    """MLflow tracking server / registry; ``artifact_root`` is where new experiments keep artifacts."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"
    # HMAC key logged models are signed with and verified against before loading (AIMASS_SIGNING_KEY).
    signing_key: str | None = None

    def client(self) -> MlflowClient:
        mlflow.set_tracking_uri(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri)

    def signing_key_value(self) -> str:
        return _signing_key(self.signing_key)

    def load_model(self, uri: str) -> Any:
        """A logged or registered model, verified against its signature and the code's skops trust list."""
        self.client()
        return registry.load_model(uri, self.signing_key_value(), SKOPS_TRUSTED_TYPES)


def _as_json(obj: object) -> bytes | None:
    """The value as JSON when JSON gives back exactly it (no tuple, int key, NaN or object lost), else None."""
    try:
        text = json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text.encode() if json.loads(text) == obj else None


def _max_rows(use_case: str) -> int | None:
    spec = load_settings().use_case_specs().get(use_case)
    return spec.training.max_rows if spec is not None else None


class LakeIOManager(ConfigurableIOManager):
    """Asset values in the lake under ``assets/<key>``: DataFrames as Parquet, values JSON holds exactly as
    JSON, anything else (fitted models) as a pickle signed with ``signing_key`` and refused unread when the
    signature does not match. A partitioned asset keeps each partition apart
    (``assets/<key>/<partition>.parquet``), and an unpartitioned consumer gets every stored partition as
    one table, in partition order.

    Size decides how a table is read (``core.scan``): above the use case's ``training.max_rows`` rows it
    comes as a ``ScanTable`` over the stored Parquet files, never as one frame. A ``ScanTable`` output is
    stored as Parquet when it owns its files, else (a view over stored files) as a signed reference."""

    lake: ResourceDependency[LakeResource]
    signing_key: str | None = None

    def _parts(self, key_path: list[str], suffix: str, partition: str | None = None) -> list[str]:
        if partition is not None:
            return ["assets", *key_path, f"{partition}.{suffix}"]
        return ["assets", *key_path[:-1], f"{key_path[-1]}.{suffix}"]

    def handle_output(self, context: OutputContext, obj: object) -> None:
        lake = self.lake.lake()
        key_path = list(context.asset_key.path)
        partition = context.asset_partition_key if context.has_asset_partitions else None
        stale = [s for s in ("parquet", "json", "pkl") if lake.exists(*self._parts(key_path, s, partition))]
        if isinstance(obj, ScanTable) and obj.owned_dir:
            location = self._store_scan(lake, obj, self._parts(key_path, "parquet", partition))
        elif isinstance(obj, pd.DataFrame):
            location = lake.write_parquet(obj, *self._parts(key_path, "parquet", partition))
        elif (text := _as_json(obj)) is not None:
            location = lake.write_bytes(text, *self._parts(key_path, "json", partition))
        else:
            if isinstance(obj, ScanTable):
                # A reference to stored files: the lake's credentials are added back on load, never stored.
                obj = replace(obj, storage_options={})
            parts = self._parts(key_path, "pkl", partition)
            blob = signed_pickle(obj, _signing_key(self.signing_key), "/".join(parts))
            location = lake.write_bytes(blob, *parts)
        for suffix in stale:
            # A value that changed format must not leave its old file to be read first.
            if not location.endswith(f".{suffix}"):
                lake.fs.rm(lake.path(*self._parts(key_path, suffix, partition)))
        context.add_output_metadata({"lake_path": lake.fs.unstrip_protocol(location)})

    def _store_scan(self, lake: Lake, table: ScanTable, parts: list[str]) -> str:
        try:
            source = table.files[0]
            if len(table.files) > 1:
                source = str(merge_files(table, Path(table.owned_dir) / "merged.parquet"))
            target = lake.path(*parts)
            lake.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            lake.fs.put_file(source, target)
            return target
        finally:
            table.discard()

    def _read(self, lake: Lake, key_path: list[str], files: list[list[str]], labels: list[str]) -> object:
        uris = [lake.uri(*parts) for parts in files]
        limit = _max_rows(key_path[0])
        if limit is not None and sum(parquet_rows(u, lake.storage_options) for u in uris) > limit:
            return ScanTable.of_files(uris, labels, **lake.storage_options)
        frames = [lake.read_parquet(*parts) for parts in files]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def _load_one(self, lake, key_path: list[str], partition: str | None) -> object:
        parquet = self._parts(key_path, "parquet", partition)
        if lake.exists(*parquet):
            return self._read(lake, key_path, [parquet], [partition or key_path[-1]])
        as_json = self._parts(key_path, "json", partition)
        if lake.exists(*as_json):
            return json.loads(lake.read_bytes(*as_json))
        pickled = self._parts(key_path, "pkl", partition)
        if not lake.exists(*pickled):
            raise FileNotFoundError(
                f"{'/'.join(key_path)} is not stored: neither {lake.uri(*parquet)} nor .json nor .pkl"
            )
        value = load_signed_pickle(
            lake.read_bytes(*pickled), _signing_key(self.signing_key), "/".join(pickled)
        )
        return replace(value, storage_options=lake.storage_options) if isinstance(value, ScanTable) else value

    def load_input(self, context: InputContext) -> object:
        lake = self.lake.lake()
        key_path = list(context.asset_key.path)
        if not context.has_asset_partitions:
            return self._load_one(lake, key_path, None)
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self._load_one(lake, key_path, keys[0])
        stored = [k for k in keys if lake.exists(*self._parts(key_path, "parquet", k))]
        missing = [k for k in keys if k not in stored]
        # A batch whose files the raw zone holds but whose output is gone would silently drop out of every
        # later training run: refuse it. One that stored nothing (all quarantined, replaced, not yet run)
        # has nothing to lose and is left out.
        lost = [k for k in missing if lake.raw_manifest(key_path[0], k) is not None]
        if lost:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: batch(es) {lost[:20]} are stored in the raw zone "
                f"{lake.uri('raw', key_path[0])} but their output under {lake.uri('assets', *key_path)} is "
                f"missing; materialise {context.asset_key.to_user_string()} again for "
                f"{'that partition' if len(lost) == 1 else 'those partitions'} (it re-reads the raw zone)"
            )
        if missing:
            # Registered but never stored: a batch that failed (quarantined, replaced) or is still running.
            context.log.warning(
                f"{context.asset_key.to_user_string()}: {len(missing)} partition(s) not in the raw zone, "
                f"not loaded: {missing[:20]}"
            )
        if not stored:
            raise FileNotFoundError(
                f"no partition of {context.asset_key.to_user_string()} is stored under "
                f"{lake.uri('assets', *key_path)} (partitions registered: {len(keys)})"
            )
        return self._read(lake, key_path, [self._parts(key_path, "parquet", k) for k in stored], stored)
