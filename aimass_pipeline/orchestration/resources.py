"""Typed resources every stage shares (the lake and its IO manager, the landing and labels zones, MLflow);
values come from the environment at run time only. A stage's own resources live in its ``resources.py``."""

import pickle

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

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.locations import Location, locate, quarantine_location
from aimass_pipeline.settings import load_settings


class LakeResource(ConfigurableResource):
    """The data lake: a local folder or an ``s3://`` URL (credentials from the AWS_* variables)."""

    url: str

    def lake(self) -> Lake:
        options = load_settings().storage_options if self.url.startswith("s3://") else {}
        return Lake(self.url, options)


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

    def client(self) -> MlflowClient:
        mlflow.set_tracking_uri(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri)


class LakeIOManager(ConfigurableIOManager):
    """Asset values in the lake: DataFrames as Parquet, other values pickled, under ``assets/<key>``; a
    partitioned asset keeps each partition apart (``assets/<key>/<partition>.parquet``), and an
    unpartitioned consumer gets every stored partition as one table, in partition order."""

    lake: ResourceDependency[LakeResource]

    def _parts(self, key_path: list[str], suffix: str, partition: str | None = None) -> list[str]:
        if partition is not None:
            return ["assets", *key_path, f"{partition}.{suffix}"]
        return ["assets", *key_path[:-1], f"{key_path[-1]}.{suffix}"]

    def handle_output(self, context: OutputContext, obj: object) -> None:
        lake = self.lake.lake()
        key_path = list(context.asset_key.path)
        partition = context.asset_partition_key if context.has_asset_partitions else None
        if isinstance(obj, pd.DataFrame):
            location = lake.write_parquet(obj, *self._parts(key_path, "parquet", partition))
        else:
            location = lake.write_bytes(pickle.dumps(obj), *self._parts(key_path, "pkl", partition))
        context.add_output_metadata({"lake_path": lake.fs.unstrip_protocol(location)})

    def _load_one(self, lake, key_path: list[str], partition: str | None) -> object:
        parquet = self._parts(key_path, "parquet", partition)
        if lake.exists(*parquet):
            return lake.read_parquet(*parquet)
        pickled = self._parts(key_path, "pkl", partition)
        if not lake.exists(*pickled):
            raise FileNotFoundError(
                f"{'/'.join(key_path)} is not stored: neither {lake.uri(*parquet)} nor .pkl"
            )
        return pickle.loads(lake.read_bytes(*pickled))

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
        return pd.concat(
            [lake.read_parquet(*self._parts(key_path, "parquet", k)) for k in stored], ignore_index=True
        )
