"""The BentoML store as a typed resource."""

from dagster import ConfigurableResource

from aimass_pipeline.deployment.bento import build_champion_bento
from aimass_pipeline.settings import load_settings


class BentoResource(ConfigurableResource):
    """The BentoML store (``BENTOML_HOME``) bentos are built into and served from."""

    home: str

    def build_champion(self, use_case: str) -> str:
        settings = load_settings()
        if str(settings.bentoml_home) != self.home:
            raise ValueError(f"BENTOML_HOME {self.home} differs from the settings' {settings.bentoml_home}")
        return build_champion_bento(settings, use_case)
