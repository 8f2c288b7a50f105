"""Request and response models of the serving API, generated from a use case's contract and its rules."""

import math
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)

from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.rules import (
    CATEGORY,
    MAX,
    MIN,
    NUMBER,
    REQUIRED,
    TEXT_LENGTH,
    WHOLE,
    Vocabulary,
    column_rules,
    unknown_kind,
)
from aimass_pipeline.core.text_contract import normalise, scrub


class BentoArgs(BaseModel):
    use_case: str | None = None
    model_tag: str | None = None
    spec: dict[str, Any] | None = None


def _reject_text_and_bool(value: Any) -> Any:
    # pydantic's lax mode would turn "42" into 42 and True into 1; a client sending those has a bug we
    # want to report rather than score.
    if isinstance(value, str | bool):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return value


def _number(whole: bool, low: float, high: float) -> Any:
    if not whole:
        # Strict floats take JSON numbers (ints too) and refuse text and booleans inside pydantic's core: a
        # Python validator per value cost 30k calls for a 1,000-row request of 30 columns.
        return Annotated[float, Field(strict=True, ge=low, le=high)]
    # Lax ints accept 3.0 (a JSON writer's whole number), so text and booleans are refused by hand. Field
    # before the validator, or pydantic writes "ge"/"le" instead of "minimum"/"maximum" into the JSON
    # schema, and generated clients (and schemathesis) cannot see the range. Whole bounds: between 2.5
    # and 7.5 the integers are 3 to 7.
    return Annotated[
        int, Field(ge=math.ceil(low), le=math.floor(high)), BeforeValidator(_reject_text_and_bool)
    ]


def _category(vocabulary: Vocabulary) -> Any:
    # The value is served in its declared spelling, as preprocessing stores it for training. The pattern
    # tells clients exactly which spellings the rule accepts, which an enum of the declared ones would not.
    schema = {
        "type": "string",
        "pattern": vocabulary.pattern,
        "description": f"one of {list(vocabulary.declared)}; letter case and surrounding spaces are ignored",
    }
    return Annotated[str, Field(strict=True), AfterValidator(vocabulary.require), WithJsonSchema(schema)]


def _text(col: Column, max_chars: float, required: bool) -> Any:
    # NFC (and the PII scrub) as ingestion stores text, so a served text is featurised as training's was.
    # The length is that of the text as sent, as the row rules count it and as JSON Schema's maxLength says.
    prepare = (lambda value: scrub(normalise(value))) if col.scrub else normalise
    # Required: a blank text is missing (core.row_rules); \S reads the same in JSON Schema and pydantic.
    limits = Field(strict=True, max_length=int(max_chars), **({"pattern": r"\S"} if required else {}))
    return Annotated[str, limits, AfterValidator(prepare)]


def _field(col: Column) -> tuple[Any, Any]:
    """The field of one feature column: its type from the contract's rules (``core.rules``), and its default."""
    number = whole = required = False
    low = high = 0.0
    vocabulary = None
    max_chars = None
    for rule in column_rules(col):
        if rule.kind == NUMBER:
            number = True
        elif rule.kind == WHOLE:
            whole = True
        elif rule.kind == MIN:
            low = rule.bound
        elif rule.kind == MAX:
            high = rule.bound
        elif rule.kind == CATEGORY:
            vocabulary = rule.vocabulary
        elif rule.kind == REQUIRED:
            required = True
        elif rule.kind == TEXT_LENGTH:
            max_chars = rule.bound
        else:
            raise unknown_kind(rule, "the served record model")
    if max_chars is not None:
        kind = _text(col, max_chars, required)
    else:
        kind = _number(whole, low, high) if number else _category(vocabulary)
    return (kind, ...) if required else (kind | None, None)


def _example_value(col: Column) -> Any:
    if col.kind == "text":
        return "A laptop holding patient records was stolen from an employee's car."
    if col.kind == "category":
        return col.categories[0]
    if col.min is not None:
        low = col.min
    else:
        low = 0.0 if col.max is None else min(0.0, col.max - 100.0)
    high = col.max if col.max is not None else low + 100.0
    # A quarter of the way up: inside the range, and not an edge a model rarely saw.
    value = low + (high - low) / 4
    if col.kind == "int":  # a whole number within fractional bounds too
        return max(math.ceil(low), min(round(value), math.floor(high)))
    return round(value, 2)


def example_record(contract: Contract) -> dict[str, Any]:
    """A record the contract accepts: the request example of the OpenAPI document."""
    return {col.name: _example_value(col) for col in contract.features}


def record_model(contract: Contract) -> type[BaseModel]:
    """Pydantic model of one scoring record: the contract's features, nothing else."""
    fields = {col.name: _field(col) for col in contract.features}
    fields.update({name: (str | None, None) for name in contract.pii_columns})  # serving/privacy.py
    return create_model(
        f"{contract.use_case}_record",
        __config__=ConfigDict(
            extra="forbid",
            allow_inf_nan=False,
            # "example", not "examples": BentoML's OpenAPI document is 3.0 and rejects the latter.
            json_schema_extra={"example": example_record(contract)},
        ),
        **fields,
    )


def request_model(
    name: str, contract: Contract, record: type[BaseModel], max_records: int
) -> type[BaseModel]:
    """The body of a scoring request, ``{"records": [...]}``; any other top-level key is an error too."""
    records = Annotated[list[record], Field(min_length=1, max_length=max_records)]  # type: ignore[valid-type]
    return create_model(
        name,
        __config__=ConfigDict(
            extra="forbid", json_schema_extra={"example": {"records": [example_record(contract)]}}
        ),
        records=(records, ...),
    )


class Prediction(BaseModel):
    prediction_id: str = Field(description="uuid4 hex, the key of this prediction in the prediction log")
    probability: float = Field(description="binary: P(positive class); multiclass: P(predicted class)")
    label: str
    probabilities: dict[str, float] | None = Field(default=None, description="multiclass: P(class) per class")


class BatchPrediction(Prediction):
    """One record's answer on ``/predict_batch``: records of several requests are scored together there,
    so each answer names the model that scored it."""

    model_name: str
    model_version: str


class PredictResponse(BaseModel):
    request_id: str = Field(description="uuid4 hex, shared by the predictions of this request")
    model_name: str
    model_version: str
    predictions: list[Prediction]
