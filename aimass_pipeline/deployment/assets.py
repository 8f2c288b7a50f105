"""Deployment: a BentoML bento built from the registry's ``@champion``."""

from dagster import AssetExecutionContext, ConfigurableResource, asset

from aimass_pipeline.use_case import UseCase


class BentoResource(ConfigurableResource):
    """The BentoML store (``BENTOML_HOME``) bentos are built into and served from."""

    home: str

    def build_champion(self, use_case: str) -> str:
        from aimass_pipeline.lib.bento import build_champion_bento
        from aimass_pipeline.settings import load_settings

        settings = load_settings()
        if str(settings.bentoml_home) != self.home:
            raise ValueError(f"BENTOML_HOME {self.home} differs from the settings' {settings.bentoml_home}")
        return build_champion_bento(settings, use_case)


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
