"""The contract every model family meets, and the YAML search-space format the tuner reads."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import optuna
    from sklearn.base import BaseEstimator

TABULAR = "tabular"
IMAGE = "image"
TEXT = "text"


@dataclass(frozen=True)
class FeatureLayout:
    """Which raw columns a model reads. For images the numeric columns are the pixels in row-major order."""

    numeric: list[str]
    categorical: list[str] = field(default_factory=list)
    image_shape: tuple[int, int] | None = None
    # credit_risk computes its ratio features inside the model so serving derives them from a raw request.
    derive_ratios: bool = False
    text: list[str] = field(default_factory=list)  # free-text columns, featurised inside the model

    def __post_init__(self) -> None:
        if self.image_shape is None:
            return
        height, width = self.image_shape
        if self.categorical or self.derive_ratios:
            raise ValueError("an image layout takes pixel columns only: no categoricals, no derived ratios")
        if height * width != len(self.numeric):
            raise ValueError(
                f"image_shape {self.image_shape} needs {height * width} pixel columns, got {len(self.numeric)}"
            )

    @property
    def kind(self) -> str:
        if self.image_shape is not None:
            return IMAGE
        return TEXT if self.text else TABULAR

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.text]


@runtime_checkable
class ModelFamily(Protocol):
    name: str
    supports: frozenset[str]
    serialization: str  # how MLflow should store the fitted pipeline: "skops" or "cloudpickle"
    skops_trusted_types: list[str]

    def default_params(self, layout: FeatureLayout, n_classes: int) -> dict[str, Any]: ...

    def suggest(self, trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]: ...

    def build(
        self, layout: FeatureLayout, n_classes: int, params: dict[str, Any], seed: int
    ) -> BaseEstimator: ...


class FamilyBase(ABC):
    """Shared checks; a family declares its parameter names so a typo in a spec fails before any fit."""

    name: ClassVar[str]
    supports: ClassVar[frozenset[str]]
    serialization: ClassVar[str] = "skops"
    skops_trusted_types: ClassVar[list[str]] = []
    param_names: ClassVar[frozenset[str]]

    @abstractmethod
    def default_params(self, layout: FeatureLayout, n_classes: int) -> dict[str, Any]: ...

    @abstractmethod
    def build(
        self, layout: FeatureLayout, n_classes: int, params: dict[str, Any], seed: int
    ) -> BaseEstimator:
        """An unfitted estimator; ``params`` may be partial, the defaults fill the rest."""

    def suggest(self, trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
        self._check_names(space, "search space")
        return suggest_from_space(trial, space)

    def merged_params(self, layout: FeatureLayout, n_classes: int, params: dict[str, Any]) -> dict[str, Any]:
        self.check_layout(layout, n_classes)
        self._check_names(params, "params")
        return {**self.default_params(layout, n_classes), **params}

    def check_layout(self, layout: FeatureLayout, n_classes: int) -> None:
        if layout.kind not in self.supports:
            raise ValueError(
                f"model family {self.name!r} supports {sorted(self.supports)} layouts, not {layout.kind!r}"
            )
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        if not layout.columns:
            raise ValueError("the feature layout has no columns")

    def _check_names(self, given: dict[str, Any], what: str) -> None:
        unknown = sorted(set(given) - self.param_names)
        if unknown:
            raise ValueError(
                f"{what} for model family {self.name!r} has unknown parameter(s) {unknown}; "
                f"known: {sorted(self.param_names)}"
            )

    def __repr__(self) -> str:
        return f"<model family {self.name}>"


_SPEC_KEYS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_range(name: str, spec: dict[str, Any]) -> None:
    low, high = spec.get("low"), spec.get("high")
    if not (_is_number(low) and _is_number(high)):
        raise ValueError(f"search space parameter {name!r}: 'low' and 'high' must be finite numbers")
    if spec["type"] == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError(f"search space parameter {name!r}: an int range needs whole-number bounds")
    if low > high:
        raise ValueError(f"search space parameter {name!r}: low {low} is above high {high}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"search space parameter {name!r}: 'log' must be true or false")
    if log and low <= 0:
        raise ValueError(f"search space parameter {name!r}: a log scale needs low > 0, got {low}")
    step = spec.get("step")
    if step is not None:
        if not _is_number(step) or step <= 0:
            raise ValueError(f"search space parameter {name!r}: 'step' must be a positive number")
        if log:
            raise ValueError(f"search space parameter {name!r}: 'step' and 'log' cannot be combined")


def validate_space(space: dict[str, dict[str, Any]]) -> None:
    """Reject a malformed space up front, naming the parameter, so a YAML typo never reaches a trial."""
    if not isinstance(space, dict) or not space:
        raise ValueError("the search space must be a non-empty mapping of parameter name to spec")
    for name, spec in space.items():
        if not isinstance(spec, dict):
            raise ValueError(f"search space parameter {name!r}: spec must be a mapping, got {spec!r}")
        kind = spec.get("type")
        if kind not in _SPEC_KEYS:
            raise ValueError(
                f"search space parameter {name!r}: type must be one of {sorted(_SPEC_KEYS)}, got {kind!r}"
            )
        extra = sorted(set(spec) - _SPEC_KEYS[kind])
        if extra:
            raise ValueError(f"search space parameter {name!r}: unexpected key(s) {extra} for type {kind!r}")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ValueError(f"search space parameter {name!r}: 'choices' must be a non-empty list")
            bad = [c for c in choices if c is not None and not isinstance(c, bool | int | float | str)]
            if bad:
                raise ValueError(f"search space parameter {name!r}: choices must be scalars, got {bad}")
        else:
            _check_range(name, spec)


def suggest_from_space(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    validate_space(space)
    params: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif kind == "int":
            step = int(spec.get("step") or 1)
            params[name] = trial.suggest_int(
                name, int(spec["low"]), int(spec["high"]), step=step, log=spec.get("log", False)
            )
        else:
            params[name] = trial.suggest_float(
                name,
                float(spec["low"]),
                float(spec["high"]),
                step=spec.get("step"),
                log=spec.get("log", False),
            )
    return params
