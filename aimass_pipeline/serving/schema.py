"""Request and response models of the serving API, generated from a use case's contract."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from aimass_pipeline.core.contracts import Column, Contract


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


def _field_type(col: Column) -> Any:
    if col.kind == "category":
        return Literal[col.categories] if col.categories else str
    if col.kind == "float":
        # Strict floats take JSON numbers (ints too) and refuse text and booleans inside pydantic's core: a
        # Python validator per value cost 30k calls for a 1,000-row request of 30 columns.
        return Annotated[float, Field(strict=True, ge=col.min, le=col.max)]
    # Lax ints accept 3.0 (a JSON writer's whole number), so text and booleans are refused by hand. Field
    # before the validator, or pydantic writes "ge"/"le" instead of "minimum"/"maximum" into the JSON
    # schema, and generated clients (and schemathesis) cannot see the range.
    return Annotated[int, Field(ge=col.min, le=col.max), BeforeValidator(_reject_text_and_bool)]


def _example_value(col: Column) -> Any:
    if col.kind == "category":
        return col.categories[0] if col.categories else "a"
    low = col.min if col.min is not None else (min(0.0, col.max) if col.max is not None else 0.0)
    high = col.max if col.max is not None else low + 100.0
    # A quarter of the way up: inside the range, and not an edge a model rarely saw.
    value = low + (high - low) / 4
    return int(value) if col.kind == "int" else round(value, 2)


def example_record(contract: Contract) -> dict[str, Any]:
    """A record the contract accepts: the request example of the OpenAPI document."""
    return {col.name: _example_value(col) for col in contract.features}


def record_model(contract: Contract) -> type[BaseModel]:
    """Pydantic model of one scoring record: the contract's features, nothing else."""
    fields: dict[str, Any] = {}
    for col in contract.features:
        kind = _field_type(col)
        fields[col.name] = (kind | None, None) if col.nullable else (kind, ...)
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
