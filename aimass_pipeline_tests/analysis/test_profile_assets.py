import json
from pathlib import Path

import pandas as pd
from dagster import (
    ConfigurableIOManager,
    DagsterInstance,
    InputContext,
    OutputContext,
    SourceAsset,
    materialize,
)

from aimass_pipeline.analysis.assets import build_analysis
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.orchestration.resources import LakeResource
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.preprocessing.cleaning import clean_records
from aimass_pipeline.transformation.features import model_table
from aimass_pipeline_tests.conftest import CREDIT_RISK, CREDIT_SPEC
from aimass_pipeline_tests.raw_batches import read_raw_batch

UC = UseCase(CREDIT_SPEC)


class FolderFrames(ConfigurableIOManager):
    """Serves an upstream asset's value from ``<folder>/<partition or 'all'>.parquet``."""

    folder: str

    def handle_output(self, context: OutputContext, obj: object) -> None:
        raise NotImplementedError("serves inputs only")

    def load_input(self, context: InputContext) -> pd.DataFrame:
        name = context.asset_partition_key if context.has_asset_partitions else "all"
        return pd.read_parquet(Path(self.folder) / f"{name}.parquet")


def _raw(frame: pd.DataFrame, batch: str) -> pd.DataFrame:
    return read_raw_batch(frame.to_csv(index=False).encode(), f"{batch}.csv", batch, CREDIT_RISK)


def _metadata(result, key: list[str]) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if list(e.asset_key.path) == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_batch_profiles_report_the_change_since_the_previous_batch(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    first = credit_frame.iloc[:1500]
    second = credit_frame.iloc[1500:3000].copy()
    second["Amount"] = second["Amount"] * 3
    _raw(first, "b1").to_parquet(folder / "b1.parquet")
    _raw(second, "b2").to_parquet(folder / "b2.parquet")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(UC.batches.name, ["b1", "b2"])
    batch_profile, _ = build_analysis(UC)
    upstream = SourceAsset(key=UC.key(UC.raw_batch), partitions_def=UC.batches, io_manager_key="frames")
    resources = {"lake": LakeResource(url=str(tmp_path / "lake")), "frames": FolderFrames(folder=str(folder))}
    key = [UC.name, f"{UC.raw_batch}_profile"]

    metas = {}
    for batch in ("b1", "b2"):
        result = materialize(
            [upstream, batch_profile], partition_key=batch, resources=resources, instance=instance
        )
        assert result.success
        metas[batch] = _metadata(result, key)
    assert metas["b1"]["compared_with"] == "nothing (first profile)"
    assert metas["b2"]["compared_with"] == "b1"
    assert metas["b2"]["dagster/row_count"] == 1500
    assert metas["b2"]["shifted_features"] == ["Amount"]
    assert (
        "**Since b1**" in metas["b2"]["summary"] and "data:image/png;base64," in metas["b2"]["distributions"]
    )

    lake = Lake(str(tmp_path / "lake"))
    stored = json.loads(lake.read_bytes("reports", "credit_risk", "batches", "b2", "profile.json"))
    assert stored["change"]["features"]["Amount"]["mean_delta"] > 1000
    assert lake.read_bytes("reports", "credit_risk", "batches", "b2", "correlations.png").startswith(
        b"\x89PNG"
    )


def test_table_profile_compares_with_its_previous_materialisation(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    _, table_profile = build_analysis(UC)
    upstream = SourceAsset(key=UC.key(UC.model_table))
    # credit_risk's model table is a dbt table: the profile reads it through the warehouse input manager.
    resources = {
        "lake": LakeResource(url=str(tmp_path / "lake")),
        "warehouse_io": FolderFrames(folder=str(folder)),
    }
    key = [UC.name, f"{UC.model_table}_profile"]
    metas = []
    for rows in (2000, 4000):
        clean, _ = clean_records(_raw(credit_frame.iloc[:rows], "b1"), CREDIT_RISK)
        model_table(clean, CREDIT_RISK).to_parquet(folder / "all.parquet")
        result = materialize([upstream, table_profile], resources=resources)
        assert result.success
        metas.append(_metadata(result, key))
    assert metas[0]["compared_with"] == "nothing (first profile)"
    assert metas[1]["dagster/row_count"] == 4000 and metas[1]["change"]["row_delta"] == 2000
    assert metas[1]["max_feature_psi"] < 0.1
