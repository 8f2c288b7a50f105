"""Model families behind one interface (see base.ModelFamily), looked up by the name a spec gives."""

from __future__ import annotations

from aimass_pipeline.models.base import (
    IMAGE,
    TABULAR,
    TEXT,
    FeatureLayout,
    ModelFamily,
    suggest_from_space,
    validate_space,
)
from aimass_pipeline.models.sklearn_families import LogRegFamily, RandomForestFamily, XGBoostFamily
from aimass_pipeline.models.text_families import TextLogRegFamily, TorchTextFamily
from aimass_pipeline.models.torch_families import TorchCNNFamily, TorchMLPFamily

FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        LogRegFamily(),
        RandomForestFamily(),
        XGBoostFamily(),
        TorchMLPFamily(),
        TorchCNNFamily(),
        TextLogRegFamily(),
        TorchTextFamily(),
    )
}

# The one list of types skops may build when a model is loaded, whatever its MLmodel file asks for.
ENSEMBLE_TYPE = "aimass_pipeline.models.ensemble.SoftVotingEnsemble"
SKOPS_TRUSTED_TYPES: tuple[str, ...] = tuple(
    sorted({ENSEMBLE_TYPE, *(name for family in FAMILIES.values() for name in family.skops_trusted_types)})
)


class UnknownFamilyError(KeyError, ValueError):
    """A lookup miss (KeyError) that is also a bad spec value (ValueError), so either handler catches it."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


def get_family(name: str) -> ModelFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None


__all__ = [
    "FAMILIES",
    "ENSEMBLE_TYPE",
    "SKOPS_TRUSTED_TYPES",
    "IMAGE",
    "TABULAR",
    "TEXT",
    "FeatureLayout",
    "UnknownFamilyError",
    "ModelFamily",
    "get_family",
    "suggest_from_space",
    "validate_space",
]
