"""Deployment: a BentoML bento built from the registry's ``@champion``."""

from dagster import AssetExecutionContext, asset

from aimass_pipeline.deployment.resources import BentoResource
from aimass_pipeline.orchestration.use_case import UseCase


def build_deployment(uc: UseCase) -> list:
    @asset(
        name="champion_bento",
        key_prefix=uc.name,
        ins=uc.ins("champion_model"),
        group_name="deployment",
        kinds={"bentoml"},
    )
    def champion_bento(context: AssetExecutionContext, champion_model: dict, bento: BentoResource) -> str:
        """The servable bento of whatever ``champion`` points at after the gate."""
        tag = bento.build_champion(uc.name)
        context.add_output_metadata(
            {
                "bento_tag": tag,
                "model_version": str(champion_model["champion_version"]),
                "serve_with": f"aimass serve {uc.name} --port 3000",
            }
        )
        return tag

    return [champion_bento]
