"""dbt tests derived from a use case's data contract, so the warehouse checks what ingestion checks.

The staging model of a dbt use case gets a generated ``_contract.yml``: key not null and unique, the target
and every category column within their allowed values, numeric ranges and required columns as one query each.
"""

from __future__ import annotations

import yaml

from aimass_pipeline.core.contracts import Contract

HEADER = (
    "# Generated from the {use_case} spec by `python -m aimass_pipeline.transformation.contract_schema`;\n"
    "# edit the spec, not this file (a test fails when the two disagree).\n"
)


def _accepted(values: list[str]) -> dict:
    return {"accepted_values": {"arguments": {"values": values}}}


def _bound(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _column(name: str, tests: list) -> dict:
    # Quote only names PostgreSQL would fold to lower case; quoting also changes dbt's test names.
    return {"name": name, **({"quote": True} if name != name.lower() else {}), "data_tests": tests}


def staging_schema(contract: Contract, model: str) -> dict:
    """The dbt properties of the staging model ``model``, which names the target ``<target lower-cased>``."""
    columns: list[dict] = [
        _column(contract.key, ["not_null", "unique"]),
        {"name": contract.target.lower(), "data_tests": ["not_null", _accepted(list(contract.classes))]},
        {"name": "batch_id", "data_tests": ["not_null"]},
    ]
    for column in contract.features:
        if column.kind == "category":
            columns.append(_column(column.name, [_accepted(list(column.categories))]))
    ranges = {
        c.name: [_bound(c.min), _bound(c.max)]
        for c in contract.features
        if c.kind != "category" and (c.min is not None or c.max is not None)
    }
    required = [c.name for c in contract.features if not c.nullable]
    tests: list[dict] = []
    if ranges:
        tests.append({"within_ranges": {"name": f"contract_ranges_{model}", "arguments": {"ranges": ranges}}})
    if required:
        tests.append(
            {"not_null_columns": {"name": f"contract_required_{model}", "arguments": {"columns": required}}}
        )
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
    body = yaml.safe_dump(staging_schema(contract, model), sort_keys=False, width=110)
    return HEADER.format(use_case=contract.use_case) + body
