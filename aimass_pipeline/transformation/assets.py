"""dbt models as assets; their dbt tests surface as asset checks."""

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from aimass_pipeline.transformation.project import ensure_manifest


class AimassDbtTranslator(DagsterDbtTranslator):
    """Models are keyed ``[<use case>, <model>]`` by their folder, and grouped as the transformation stage."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            use_case = dbt_resource_props["fqn"][1]
            return AssetKey([use_case, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transformation"


@dbt_assets(
    manifest=ensure_manifest(),
    dagster_dbt_translator=AimassDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
)
def warehouse_models(context: AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()
