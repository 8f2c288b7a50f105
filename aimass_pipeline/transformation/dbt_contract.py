"""dbt tests derived from a use case's contract rules (``core.rules``), so the warehouse refuses what
ingestion, preprocessing and the served model refuse.

The staging model of a dbt use case gets a generated ``_contract.yml``: one test per rule kind, each one
query over every column it concerns (the macros in ``dbt/macros/tests/contract_tests.sql``); a failing row
is the model's row with the column, rule and value at fault. The staging model's casts to double precision
hold the ``type.numeric`` rule, and ``contract_ranges`` its finiteness.
"""

from __future__ import annotations

import yaml

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.rules import (
    CATEGORY,
    INT_LIMIT,
    KEY_PRESENT,
    KEY_UNIQUE,
    MAX,
    MIN,
    NUMBER,
    REQUIRED,
    TARGET,
    TEXT_LENGTH,
    WHOLE,
    bounds,
    contract_rules,
    unknown_kind,
)

HEADER = (
    "# Generated from the {use_case} spec by `python -m aimass_pipeline.transformation.contract_schema`;\n"
    "# edit the spec, not this file (a test fails when the two disagree).\n"
)


def _bound(value: float) -> float | int:
    # A whole bound as an integer literal, the limits of a double as a double: 1.79e308 written out whole
    # would be a 309-digit decimal no warehouse reads as a number.
    return int(value) if float(value).is_integer() and abs(value) <= INT_LIMIT else float(value)


def _column(name: str, tests: list) -> dict:
    # Quote only names PostgreSQL would fold to lower case; quoting also changes dbt's test names.
    return {"name": name, **({"quote": True} if name != name.lower() else {}), "data_tests": tests}


def rule_tests(contract: Contract, model: str) -> tuple[list[dict], list[dict]]:
    """(column tests, model tests) for every rule of the contract; the staging model names the target
    ``<target lower-cased>``."""
    target = contract.target.lower()
    ranges: dict[str, list] = {}
    whole, required, key_tests, present = [], [], [], False
    categories: dict[str, list[str]] = {}
    classes: list[str] = []
    lengths: dict[str, int] = {}
    for rule in contract_rules(contract):
        if rule.kind == KEY_PRESENT:
            present = True  # null or blank: built-in not_null sees no blank
        elif rule.kind == KEY_UNIQUE:
            key_tests.append("unique")
        elif rule.kind == NUMBER:
            continue  # the staging model's cast; finiteness with the range
        elif rule.kind in (MIN, MAX):
            ranges[rule.column] = [_bound(b) for b in bounds(contract.column(rule.column))]
        elif rule.kind == WHOLE:
            whole.append(rule.column)
        elif rule.kind == CATEGORY:
            categories[rule.column] = list(rule.vocabulary.declared)
        elif rule.kind == REQUIRED:
            required.append(rule.column)
        elif rule.kind == TARGET:
            classes = list(rule.vocabulary.declared)
        elif rule.kind == TEXT_LENGTH:
            lengths[rule.column] = int(rule.bound)
        else:
            raise unknown_kind(rule, "the generated dbt tests")
    columns = [_column(contract.key, key_tests), {"name": "batch_id", "data_tests": ["not_null"]}]
    model_tests = [
        ("key", {"column": contract.key} if present else None),
        ("target", {"column": target, "classes": classes}),
        ("categories", {"categories": categories} if categories else None),
        ("ranges", {"ranges": ranges} if ranges else None),
        ("whole", {"columns": whole} if whole else None),
        ("required", {"columns": required} if required else None),
        ("text_length", {"lengths": lengths} if lengths else None),
    ]
    return columns, [
        {f"contract_{kind}": {"name": f"contract_{kind}_{model}", "arguments": arguments}}
        for kind, arguments in model_tests
        if arguments is not None
    ]


def staging_schema(contract: Contract, model: str) -> dict:
    """The dbt properties of the staging model ``model``: its tests from the contract's rules."""
    columns, tests = rule_tests(contract, model)
    return {
        "version": 2,
        "models": [
            {
                "name": model,
                "description": f"{contract.use_case}: the lake's clean table typed; tests from the data contract.",
                "columns": columns,
                "data_tests": tests,
            }
        ],
    }


def staging_schema_yaml(contract: Contract, model: str) -> str:
    body = yaml.safe_dump(staging_schema(contract, model), sort_keys=False, width=110, allow_unicode=True)
    return HEADER.format(use_case=contract.use_case) + body
