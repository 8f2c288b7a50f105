"""The use cases this deployment knows: the packaged specs plus ``$AIMASS_HOME/specs/*.yaml``."""

from aimass_pipeline.lib.specs import UseCaseSpec, load_specs
from aimass_pipeline.settings import load_settings


def use_case_specs() -> dict[str, UseCaseSpec]:
    return load_specs(load_settings().home / "specs")
