"""One rule set, every layer: ingestion, preprocessing, the Great Expectations suite, the served pydantic model
and its OpenAPI schema accept and refuse exactly the same records, and store or serve the same values.

(The generated dbt tests are held to the same verdicts in transformation/test_dbt_contract.py: one dbt run
costs ~10 s, so they take a sample of these cases rather than every one.)
"""

import math
import re

import jsonschema
import pytest
from hypothesis import HealthCheck, given, note, settings
from pydantic import ValidationError

from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.specs import ColumnSpec, DataSpec
from aimass_pipeline.core.validation import quality_expectations
from aimass_pipeline.serving.schema import example_record, record_model
from aimass_pipeline_tests.contract_cases import (
    KEY,
    TARGET,
    Case,
    Value,
    cases,
    gx_refusals,
    ingestion_refusals,
    preprocessing_refusals,
    serving_refusals,
)


def _same(a: object, b: object) -> bool:
    missing = [x is None or (isinstance(x, float) and math.isnan(x)) for x in (a, b)]
    if any(missing):
        return all(missing)
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return float(a) == float(b)  # type: ignore[arg-type]


def _schema_refusals(case: Case) -> set[int]:
    """Records the served model's JSON schema (the OpenAPI document) refuses, among those JSON can carry."""
    validator = jsonschema.Draft202012Validator(record_model(case.contract).model_json_schema())
    refused = set()
    for i, record in enumerate(case.records):
        body = {c.name: record[c.name].json for c in case.contract.features}
        if not validator.is_valid(body):
            refused.add(i)
    return refused


def _json_finite(case: Case) -> list[int]:
    # JSON has no NaN or infinity; a JSON Schema cannot speak of them (pydantic refuses them, tested above).
    return [
        i
        for i, r in enumerate(case.records)
        if not any(isinstance(v.json, float) and not math.isfinite(v.json) for v in r.values())
    ]


# Deliberate budgets: the files, cleaning and serving layers take ~20 ms a case, a Great Expectations run
# ~100 ms; 1,500 random cases of each passed when these were set.
SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=True,  # the same cases every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=100, **SETTINGS)
@given(case=cases())
def test_files_cleaning_and_serving_accept_and_refuse_the_same_records(case: Case) -> None:
    note(repr(case))
    refused, refused_for_features = ingestion_refusals(case)
    cleaning_refused, clean = preprocessing_refusals(case)
    assert cleaning_refused == refused, "ingestion vs preprocessing"

    served_refused, served = serving_refusals(case)
    assert served_refused == refused_for_features, "the files' rules vs the served model"
    finite = set(_json_finite(case))
    assert _schema_refusals(case) & finite == served_refused & finite, "served model vs its OpenAPI schema"
    record_model(case.contract).model_validate(example_record(case.contract))  # the OpenAPI example

    # What was accepted is stored and served as the same values.
    assert len(clean) == len(case.records) - len(refused)
    index = {r[KEY].typed: i for i, r in enumerate(case.records)}
    for row in clean.to_dict("records"):
        i = index[row[KEY]]
        record = case.records[i]
        assert row[TARGET] == record[TARGET].typed
        for name in case.contract.feature_names:
            assert _same(row[name], record[name].typed), (name, row[name], record[name])
            assert _same(row[name], served[i][name]), (name, row[name], served[i][name])


@settings(max_examples=25, **SETTINGS)
@given(case=cases())
def test_great_expectations_refuses_what_the_files_rules_refuse(case: Case) -> None:
    note(repr(case))
    typed = case.typed_rows
    gx_refused = gx_refusals(case, typed, quality_expectations(case.contract))
    assert gx_refused == ingestion_refusals(case)[0] & set(typed)


TRAVEL = ("Non-Travel", "Travel_Rarely", "Travel_Frequently")


def _travel_case(declared: tuple[str, ...], spellings: list[str]) -> Case:
    contract = Contract(
        use_case="staff",
        key=KEY,
        target=TARGET,
        classes=("No", "Yes"),
        features=(Column("BusinessTravel", "category", False, categories=declared),),
    )
    records = [
        {
            KEY: Value(f"K{i}", f"K{i}", f"K{i}"),
            TARGET: Value(" yes", " yes", "Yes"),
            "BusinessTravel": Value(text, text, "Travel_Rarely"),
        }
        for i, text in enumerate(spellings)
    ]
    return Case(contract, records)


@pytest.mark.parametrize("declared", [TRAVEL, tuple(t.lower() for t in TRAVEL)], ids=["as-written", "lower"])
def test_travel_rarely_lands_cleans_and_serves_in_the_declared_spelling(declared: tuple[str, ...]) -> None:
    spellings = ["Travel_Rarely", "travel_rarely", "TRAVEL_RARELY", "  tRAVEL_rARELY\t"]
    case = _travel_case(declared, spellings)
    stored = declared[1]

    assert ingestion_refusals(case)[0] == set()
    refused, clean = preprocessing_refusals(case)
    assert refused == set() and clean["BusinessTravel"].tolist() == [stored] * 4
    assert clean[TARGET].tolist() == ["Yes"] * 4
    served_refused, served = serving_refusals(case)
    assert served_refused == set() and [r["BusinessTravel"] for r in served.values()] == [stored] * 4


def test_a_spelling_the_rule_does_not_fold_is_refused_everywhere() -> None:
    case = _travel_case(TRAVEL, ["Travel Rarely", "Travel_Rarely\u00a0", "Travel_Rarelyy"])
    assert ingestion_refusals(case)[0] == {0, 1, 2}
    assert preprocessing_refusals(case)[0] == {0, 1, 2}
    assert serving_refusals(case)[0] == {0, 1, 2}


@pytest.mark.parametrize(
    ("categories", "problem"),
    [
        (["Yes", "yes"], "'Yes' and 'yes' are the same once letter case is ignored"),
        (["Travel_Rarely", " TRAVEL_RARELY"], "' TRAVEL_RARELY' has surrounding whitespace"),
        (["a", ""], "'' is empty"),
    ],
)
def test_a_spec_refuses_categories_the_rule_cannot_tell_apart(categories: list[str], problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        ColumnSpec(name="Travel", kind="category", categories=categories)
    with pytest.raises(ValidationError, match=re.escape(problem)):
        DataSpec(key=KEY, target=TARGET, classes=categories, columns=[ColumnSpec(name="x", kind="int")])


def test_classes_are_declared_as_the_data_writes_them() -> None:
    data = DataSpec(key=KEY, target=TARGET, classes=["No", "Yes"], columns=[ColumnSpec(name="x", kind="int")])
    assert data.classes == ["No", "Yes"]


def test_an_int_column_whose_range_holds_no_whole_number_is_a_spec_error() -> None:
    with pytest.raises(ValidationError, match="no whole number between 2.5 and 2.7"):
        ColumnSpec(name="x", kind="int", min=2.5, max=2.7)
    assert ColumnSpec(name="x", kind="int", min=2.5, max=3.0).max == 3.0
