"""Transformation: dbt models (their tests surface as asset checks), or a Python model table for use
cases whose spec says ``transformation: python``."""

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetObservation, Config, asset
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from aimass_pipeline.core.scan import AnyTable, ScanTable, path_of, rows_of, value_counts
from aimass_pipeline.core.specs import UseCaseSpec
from aimass_pipeline.orchestration.resources import LakeResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase
from aimass_pipeline.transformation.features import model_table, model_table_scan
from aimass_pipeline.transformation.project import MANIFEST_PATH, ensure_manifest
from aimass_pipeline.transformation.resources import WarehouseResource
from aimass_pipeline.transformation.warehouse_load import LoadReport, lake_sources


class AimassDbtTranslator(DagsterDbtTranslator):
    """Models are keyed ``[<use case>, <model>]`` by their folder, and grouped as the transformation stage."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            use_case = dbt_resource_props["fqn"][1]
            return AssetKey([use_case, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transformation"


class DbtBuildConfig(Config):
    """``batch_id`` rebuilds only that landed batch's rows of the incremental models; empty rebuilds all.
    ``full_refresh`` recreates them, as needed after a model's columns change (dbt refuses otherwise)."""

    batch_id: str = ""
    full_refresh: bool = False


def dbt_build_args(config: DbtBuildConfig) -> list[str]:
    args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
    if config.batch_id.strip():
        args += ["--vars", json.dumps({"batch_id": config.batch_id.strip()})]
    return args


def load_sources(
    context: AssetExecutionContext,
    specs: dict[str, UseCaseSpec],
    warehouse: WarehouseResource,
    lake: LakeResource,
    batch_id: str,
) -> list[LoadReport]:
    """Copy the lake tables the selected models' use cases read into the warehouse (prod: PostgreSQL),
    each reported as an observation of the asset that wrote it."""
    use_cases = {key.path[0] for key in context.selected_asset_keys}
    sources = lake_sources(json.loads(MANIFEST_PATH.read_text()), use_cases)
    store = lake.lake()
    reports = []
    for source in sources:
        if source.use_case not in specs:
            raise KeyError(f"dbt models folder {source.use_case!r} has no use-case spec: {sorted(specs)}")
        if not store.exists(*source.lake_parts):
            raise FileNotFoundError(
                f"dbt source {source.table} of {source.use_case}: {store.uri(*source.lake_parts)} does not "
                "exist; materialize its preprocessing asset first"
            )
        frame = store.read_parquet(*source.lake_parts)
        report = warehouse.load_source(
            source.use_case, source.table, frame, key=specs[source.use_case].contract.key, batch_id=batch_id
        )
        context.log.info(f"loaded {source.use_case}/{source.table} into the warehouse: {report}")
        context.log_event(
            AssetObservation(asset_key=AssetKey(source.asset_key), metadata=report.as_metadata())
        )
        reports.append(report)
    return reports


def build_warehouse_models(specs: dict[str, UseCaseSpec]):
    """Every dbt model of every use case, one multi-asset over the project's manifest."""

    @dbt_assets(
        manifest=ensure_manifest(),
        dagster_dbt_translator=AimassDbtTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
        ),
    )
    def warehouse_models(
        context: AssetExecutionContext,
        dbt: DbtCliResource,
        warehouse: WarehouseResource,
        lake: LakeResource,
        config: DbtBuildConfig,
    ):
        if dbt.target != warehouse.dbt_target:
            raise ValueError(
                f"dbt runs target {dbt.target!r} but the warehouse resource is {type(warehouse).__name__} "
                f"(target {warehouse.dbt_target!r}): both come from Settings.dbt_target"
            )
        if not warehouse.sources_in_lake:
            load_sources(context, specs, warehouse, lake, config.batch_id.strip())
        yield from dbt.cli(dbt_build_args(config), context=context).stream()

    return warehouse_models


def build_transformation(uc: UseCase) -> list:
    if uc.spec.transformation == "dbt":
        return []

    @asset(
        name=uc.model_table,
        key_prefix=uc.name,
        ins={"clean": uc.ins(uc.clean)[uc.clean]},
        group_name="transformation",
        kinds={"pandas", "parquet"},
    )
    def features(context: AssetExecutionContext, clean: AnyTable) -> AnyTable:
        """Key, typed features, the integer label in the spec's class order, and each row's batch."""
        if isinstance(clean, ScanTable):
            workdir = Path(tempfile.mkdtemp(prefix="aimass-features-"))
            table = model_table_scan(clean, uc.contract, workdir, LABEL)
        else:
            table = model_table(clean, uc.contract, LABEL)
        context.add_output_metadata(
            {
                "dagster/row_count": rows_of(table),
                "read_path": path_of(table),
                "class_counts": {
                    uc.contract.classes[int(k)]: v for k, v in value_counts(table, LABEL).items()
                },
            }
        )
        return table

    return [features]
