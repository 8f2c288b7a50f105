"""Great Expectations suites derived from a use case's data contract, run on a DataFrame."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import ModuleType

import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.rules import (
    CATEGORY,
    KEY_PRESENT,
    KEY_UNIQUE,
    MAX,
    MIN,
    NUMBER,
    REQUIRED,
    TARGET,
    TEXT_LENGTH,
    WHOLE,
    Rule,
    bounds,
    contract_rules,
    unknown_kind,
)


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    expected: str
    observed: str


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    success: bool
    outcomes: list[ExpectationOutcome]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def markdown(self) -> str:
        lines = ["| expectation | column | ok | expected | observed |", "|---|---|---|---|---|"]
        for o in self.outcomes:
            mark = "yes" if o.success else "**NO**"
            lines.append(f"| {o.expectation} | {o.column or ''} | {mark} | {o.expected} | {o.observed} |")
        return "\n".join(lines)


def schema_expectations(contract: Contract) -> list:
    """What a raw batch must look like: the contract's columns, a key and a known target."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=contract.raw_columns, exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column=contract.key),
        gxe.ExpectColumnValuesToNotBeNull(column=contract.target),
    ]


# The numpy dtypes a typed table holds a numeric column in: float64 in the clean table, double in the
# warehouse, whose reads are typed (pandas extension dtypes such as Int64 are not produced, and GX does not
# match them by these names).
NUMERIC_DTYPES = ["float64", "float32", "int64", "int32", "int16", "int8"]


def _rule_expectations(gxe: ModuleType, rule: Rule, contract: Contract) -> list:
    """What ``rule`` means for a clean (typed) table: keys trimmed, numbers numeric, categories declared."""
    column = rule.column
    if rule.kind == KEY_PRESENT:
        # \A\Z, not ^$: $ also matches before a final newline.
        return [
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            gxe.ExpectColumnValuesToNotMatchRegex(column=column, regex=r"\A\Z"),
        ]
    if rule.kind == KEY_UNIQUE:
        return [gxe.ExpectColumnValuesToBeUnique(column=column)]
    if rule.kind == NUMBER:
        # Finite too: infinities fall outside the bounds of MIN, which ``bounds`` always gives.
        return [gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=NUMERIC_DTYPES)]
    if rule.kind == WHOLE:
        from aimass_pipeline.core.gx_expectations import ExpectColumnValuesToBeWholeNumbers

        return [ExpectColumnValuesToBeWholeNumbers(column=column)]
    if rule.kind == MIN:
        low, high = bounds(contract.column(column))
        return [gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)]
    if rule.kind == MAX:
        return []  # one expectation with MIN: both come from ``bounds``
    if rule.kind == CATEGORY:
        return [gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(rule.vocabulary.declared))]
    if rule.kind == REQUIRED:
        if contract.column(column).kind == "text":  # a blank text is missing (core.row_rules)
            return [
                gxe.ExpectColumnValuesToNotBeNull(column=column),
                gxe.ExpectColumnValuesToNotMatchRegex(column=column, regex=r"\A\s*\Z"),
            ]
        return [gxe.ExpectColumnValuesToNotBeNull(column=column)]
    if rule.kind == TEXT_LENGTH:
        return [gxe.ExpectColumnValueLengthsToBeBetween(column=column, max_value=int(rule.bound))]
    if rule.kind == TARGET:
        return [
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(rule.vocabulary.declared)),
        ]
    raise unknown_kind(rule, "the Great Expectations suite")


def quality_expectations(contract: Contract) -> list:
    """What a clean table must satisfy: every rule of the contract (``core.rules``)."""
    import great_expectations.expectations as gxe

    return [e for rule in contract_rules(contract) for e in _rule_expectations(gxe, rule, contract)]


def model_table_expectations(contract: Contract, label: str, min_rows: int) -> list:
    """What training may rely on after transformation: one row per key, integer labels in range, the
    contract's features still within its rules, each row traceable to its batch, and enough rows."""
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=min_rows),
        gxe.ExpectColumnValuesToBeUnique(column=contract.key),
        gxe.ExpectColumnValuesToNotBeNull(column=contract.key),
        gxe.ExpectColumnValuesToBeInSet(column=label, value_set=list(range(len(contract.classes)))),
        gxe.ExpectColumnValuesToNotBeNull(column="batch_id"),
    ]
    return expectations + [
        e for e in quality_expectations(contract) if getattr(e, "column", None) in contract.feature_names
    ]


def _describe(result) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")}
    observed_parts = []
    res = result.result or {}
    if "observed_value" in res:
        observed_parts.append(f"observed {res['observed_value']}")
    if res.get("unexpected_count"):
        sample = res.get("partial_unexpected_list", [])[:5]
        observed_parts.append(
            f"{res['unexpected_count']} unexpected ({res.get('unexpected_percent', 0):.2f}%), e.g. {sample}"
        )
    if res.get("details", {}).get("mismatched"):
        observed_parts.append(f"mismatched {res['details']['mismatched']}")
    return ExpectationOutcome(
        expectation=config.type,
        column=config.kwargs.get("column"),
        success=bool(result.success),
        expected=", ".join(f"{k}={v}" for k, v in kwargs.items()) or "-",
        observed="; ".join(observed_parts) or ("ok" if result.success else "failed"),
    )


def run_suite(frame: pd.DataFrame, suite_name: str, expectations: list) -> SuiteOutcome:
    """Validate with an ephemeral GX context: nothing is written to disk."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws a "Calculating Metrics" bar per suite on stderr, a wall of noise in a run's output.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    tag = uuid.uuid4().hex[:8]
    batch = (
        context.data_sources.add_pandas(f"ds_{tag}")
        .add_dataframe_asset(f"asset_{tag}")
        .add_batch_definition_whole_dataframe(f"batch_{tag}")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"vd_{tag}", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    outcomes = [_describe(r) for r in result.results]
    return SuiteOutcome(suite=suite_name, success=bool(result.success), outcomes=outcomes)
