"""Data contracts: the columns a use case's landed files must carry, declared once.

Preprocessing, the Great Expectations suites and the serving schema are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "int", "float" or "category"
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    use_case: str
    key: str
    target: str
    target_values: tuple[str, str]  # (negative, positive)
    features: tuple[Column, ...]
    description: str = ""
    extra_columns_allowed: bool = False
    tags: dict = field(default_factory=dict)

    @property
    def positive_label(self) -> str:
        return self.target_values[1]

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
    def raw_columns(self) -> list[str]:
        return [self.key, self.target, *self.feature_names]

    def column(self, name: str) -> Column:
        for col in self.features:
            if col.name == name:
                return col
        raise KeyError(f"{self.use_case}: no feature column {name!r}")


CREDIT_RISK = Contract(
    use_case="credit_risk",
    key="application_id",
    target="Status",
    target_values=("good", "bad"),
    description="Loan applicants (R modeldata::credit_data); predict whether a loan goes bad.",
    features=(
        Column("Seniority", "int", nullable=False, min=0, max=60),
        Column("Home", "category", categories=("rent", "owner", "priv", "ignore", "parents", "other")),
        Column("Time", "int", nullable=False, min=1, max=120),
        Column("Age", "int", nullable=False, min=18, max=100),
        Column("Marital", "category", categories=("single", "married", "widow", "separated", "divorced")),
        Column("Records", "category", nullable=False, categories=("no", "yes")),
        Column("Job", "category", categories=("fixed", "freelance", "partime", "others")),
        Column("Expenses", "int", nullable=False, min=0, max=1_000),
        Column("Income", "float", min=0, max=10_000),
        Column("Assets", "float", min=0, max=1_000_000),
        Column("Debt", "float", min=0, max=1_000_000),
        Column("Amount", "int", nullable=False, min=1, max=100_000),
        Column("Price", "int", nullable=False, min=1, max=1_000_000),
    ),
)

CONTRACTS: dict[str, Contract] = {CREDIT_RISK.use_case: CREDIT_RISK}


def get_contract(use_case: str) -> Contract:
    try:
        return CONTRACTS[use_case]
    except KeyError:
        raise KeyError(f"unknown use case {use_case!r}; known: {sorted(CONTRACTS)}") from None
