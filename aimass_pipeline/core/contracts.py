"""Data contracts: the columns a use case's landed files must carry, declared once in its spec.

Preprocessing, the Great Expectations suites and the serving schema are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and pandas cost a second: specs (and so every CLI command) load contracts
    import numpy as np
    import pandas as pd

    from aimass_pipeline.core.pii import PiiSpec

# What collection adds to every raw row: the batch, the landed file and the line it came from.
META_COLUMNS = ["_batch_id", "_source_file", "_source_row"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "int", "float", "category" or "text" (``max`` is then its maximum length in characters)
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()
    scrub: bool = False  # a text column declared PII: contacts replaced by tokens (core.text_contract)


@dataclass(frozen=True)
class Contract:
    use_case: str
    key: str
    target: str
    classes: tuple[str, ...]  # label i is classes[i]; for a binary task classes[1] is the positive class
    features: tuple[Column, ...]
    description: str = ""
    extra_columns_allowed: bool = False
    max_reject_share: float = 0.0
    pii: PiiSpec | None = None  # personal columns, landed beside the features and never modelled

    @property
    def pii_columns(self) -> list[str]:
        return self.pii.names if self.pii is not None else []

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2

    @property
    def positive_label(self) -> str:
        return self.classes[-1]

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [c.name for c in self.features if c.kind in ("int", "float")]

    @property
    def categorical_features(self) -> list[str]:
        return [c.name for c in self.features if c.kind == "category"]

    @property
    def text_features(self) -> list[str]:
        return [c.name for c in self.features if c.kind == "text"]

    @property
    def raw_columns(self) -> list[str]:
        return [self.key, self.target, *self.feature_names, *self.pii_columns]

    def column(self, name: str) -> Column:
        for col in self.features:
            if col.name == name:
                return col
        raise KeyError(f"{self.use_case}: no feature column {name!r}")

    def encode_target(self, values: pd.Series) -> np.ndarray:
        """Class names to label ids 0..K-1 in the spec's order."""
        import numpy as np

        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(set(values.dropna().astype(str)) - set(index))
        if unknown or values.isna().any():
            raise ValueError(
                f"{self.use_case}: target values {unknown or ['<missing>']} are not in {self.classes}"
            )
        return values.astype(str).map(index).to_numpy(dtype=np.int64)
