"""Use-case specs: one YAML file per use case, validated, from which its contract, assets and jobs derive."""

from __future__ import annotations

import re
from math import ceil, floor
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.pii import PiiSpec
from aimass_pipeline.core.rules import declaration_problems
from aimass_pipeline.core.text_contract import TextSpec

PACKAGED_SPECS = Path(__file__).resolve().parent.parent / "specs"
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    name: str
    kind: Literal["int", "float", "category", "text"]
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.kind == "category" and not self.categories:
            raise ValueError(f"column {self.name!r}: a category column needs 'categories'")
        problems = declaration_problems(self.categories)
        if problems:
            raise ValueError(f"column {self.name!r}: categories {'; '.join(problems)}")
        if self.kind != "category" and self.categories:
            raise ValueError(f"column {self.name!r}: only category columns take 'categories'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min} > max {self.max}")
        if self.kind == "int" and None not in (self.min, self.max) and ceil(self.min) > floor(self.max):
            raise ValueError(f"column {self.name!r}: no whole number between {self.min} and {self.max}")
        return self


class ImageSpec(_Strict):
    """Pixel columns ``<prefix>_<row>_<col>`` in row-major order."""

    shape: tuple[int, int]
    prefix: str = "pixel"
    kind: Literal["int", "float"] = "int"
    min: float = 0
    max: float = 255
    channels: Literal[1, 3] = 1  # grey, or RGB as <prefix>_<row>_<col>_<channel> (core.images)
    source: Literal["columns", "files"] = "columns"  # files: PNG/JPEG in a zip, tar or folder

    def columns(self) -> list[ColumnSpec]:
        rows, cols = self.shape
        suffixes = [""] if self.channels == 1 else [f"_{ch}" for ch in range(self.channels)]
        return [
            ColumnSpec(
                name=f"{self.prefix}_{r}_{c}{s}", kind=self.kind, nullable=False, min=self.min, max=self.max
            )
            for r in range(rows)
            for c in range(cols)
            for s in suffixes
        ]


class DataSpec(_Strict):
    key: str
    target: str
    classes: list[str] = Field(min_length=2)
    entity: str = "records"
    model_table: str | None = None
    columns: list[ColumnSpec] = []
    image: ImageSpec | None = None
    text: TextSpec | None = None
    derive_ratios: bool = False
    seed_source: str | None = None
    # Rows breaking a row-level rule go to the rejects table while their share of a file stays at or below
    # this; above it the whole file is quarantined. 0 means any bad row quarantines the file.
    max_reject_share: float = Field(default=0.0, ge=0, lt=1)
    pii: PiiSpec | None = None  # personal columns (core.pii): pseudonymised at the door, erasable

    @field_validator("classes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        # Classes follow the category rule (core.rules): matched ignoring case and surrounding spaces.
        problems = declaration_problems(value)
        if problems:
            raise ValueError(f"classes {'; '.join(problems)}")
        return value

    @model_validator(mode="after")
    def _has_features(self) -> DataSpec:
        names = [c.name for c in self.all_columns()]
        if not names:
            raise ValueError("a spec needs feature 'columns' or an 'image'")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate feature columns {duplicated}")
        if self.key in names or self.target in names:
            raise ValueError("the key and the target must not be feature columns")
        return self

    @property
    def model_table_name(self) -> str:
        return self.model_table or f"{self.entity}_features"

    def all_columns(self) -> list[ColumnSpec]:
        text = self.text
        typed = (
            [ColumnSpec(name=text.column, kind="text", nullable=text.nullable, max=text.max_chars)]
            if text
            else []
        )
        return [*self.columns, *(self.image.columns() if self.image else []), *typed]


class SearchParam(_Strict):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[str | int | float | bool] | None = None


class FamilySpec(_Strict):
    params: dict[str, object] = {}
    search: dict[str, SearchParam] = {}
    trials: int | None = Field(default=None, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)


class TuningSpec(_Strict):
    trials: int = Field(default=10, ge=0)
    timeout_s: float = Field(default=120, gt=0)
    cv_folds: int = Field(default=3, ge=2, le=10)


class TrainingSpec(_Strict):
    """Above ``max_rows`` rows a table is scanned, not loaded (``core.scan``); XGBoost then trains on every
    row from an iterator, and the families that cannot scale fit on a seeded ``max_rows``-row sample."""

    max_rows: int = Field(default=20_000, ge=1_000)


class GateSpec(_Strict):
    floor: float
    min_delta: float = Field(default=0.0, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    max_latency_ms: float | None = Field(default=None, gt=0)
    min_holdout_rows: int = Field(default=100, ge=10)


class CompressionSpec(_Strict):
    enabled: bool = True
    tolerance: float = Field(default=0.002, ge=0)


class MonitoringSpec(_Strict):
    """When served traffic counts as drifted from the champion's training data, and how often to look."""

    psi_threshold: float = Field(default=0.2, gt=0)
    ks_alpha: float = Field(default=0.01, gt=0, lt=1)
    # Share of features that must drift (PSI over the threshold) before retraining is launched.
    drifted_feature_share: float = Field(default=0.3, gt=0, le=1)
    prediction_psi_threshold: float = Field(default=0.2, gt=0)
    min_rows: int = Field(default=200, ge=10)
    window_hours: int = Field(default=24, ge=1)
    cooldown_s: float = Field(default=3600, ge=0)
    cron: str = "*/15 * * * *"


class UseCaseSpec(_Strict):
    name: str
    description: str
    domain: str
    task: Literal["binary", "multiclass"]
    metric: Literal["roc_auc", "accuracy"]
    data: DataSpec
    transformation: Literal["python", "dbt"] = "python"
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    families: dict[str, FamilySpec]
    ensemble: bool = True
    tuning: TuningSpec = TuningSpec()
    training: TrainingSpec = TrainingSpec()
    gate: GateSpec
    compression: CompressionSpec = CompressionSpec()
    monitoring: MonitoringSpec = MonitoringSpec()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"name {value!r} must be lower-case letters, digits and '_' (2-41 chars)")
        return value

    @model_validator(mode="after")
    def _task_matches_classes(self) -> UseCaseSpec:
        n = len(self.data.classes)
        if self.task == "binary" and n != 2:
            raise ValueError(f"task 'binary' needs exactly 2 classes, got {n}")
        if self.task == "multiclass" and n < 3:
            raise ValueError(f"task 'multiclass' needs 3 or more classes, got {n}")
        if not self.families:
            raise ValueError("list at least one model family under 'families'")
        return self

    @property
    def contract(self) -> Contract:
        scrub = self.data.text is not None and self.data.text.pii == "scrub"
        return Contract(
            use_case=self.name,
            key=self.data.key,
            target=self.data.target,
            classes=tuple(self.data.classes),
            description=self.description,
            max_reject_share=self.data.max_reject_share,
            pii=self.data.pii,
            features=tuple(
                Column(
                    c.name, c.kind, c.nullable, c.min, c.max, tuple(c.categories), scrub and c.kind == "text"
                )
                for c in self.data.all_columns()
            ),
        )

    def budget(self, family: str) -> tuple[int, float]:
        """(trials, seconds) for a family's tuning: its own setting, else the spec's default."""
        fam = self.families[family]
        return (
            self.tuning.trials if fam.trials is None else fam.trials,
            self.tuning.timeout_s if fam.timeout_s is None else fam.timeout_s,
        )


class SpecError(ValueError):
    """A use-case spec file that cannot be used, with the file and the fields at fault."""


def load_spec(path: Path) -> UseCaseSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a mapping of fields, got {type(raw).__name__}")
    try:
        spec = UseCaseSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"{path}: {problems}") from exc
    if spec.name != path.stem:
        raise SpecError(f"{path}: the file must be named after the use case ({spec.name}.yaml)")
    return spec


def load_specs(*folders: Path, broken: dict[str, SpecError] | None = None) -> dict[str, UseCaseSpec]:
    """The packaged specs plus any in ``folders``; a name defined twice is an error, not an override.
    With ``broken`` given, a spec that cannot be used is recorded there under its file's name (the use case
    it would define) and every other spec still loads; without it, the first such spec raises SpecError."""
    specs: dict[str, UseCaseSpec] = {}
    for folder in (PACKAGED_SPECS, *folders):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            try:
                spec = load_spec(path)
                if spec.name in specs:
                    raise SpecError(f"{path}: use case {spec.name!r} is already defined by another spec")
            except SpecError as error:
                if broken is None:
                    raise
                broken[path.stem] = error
                continue
            specs[spec.name] = spec
    return specs
