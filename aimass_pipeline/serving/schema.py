"""Request and response models of the serving API, generated from a use case's contract."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from aimass_pipeline.lib.contracts import Column, Contract


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
    number = int if col.kind == "int" else float
    return Annotated[number, BeforeValidator(_reject_text_and_bool), Field(ge=col.min, le=col.max)]


def record_model(contract: Contract) -> type[BaseModel]:
    """Pydantic model of one scoring record: the contract's features, nothing else."""
    fields: dict[str, Any] = {}
    for col in contract.features:
        kind = _field_type(col)
        fields[col.name] = (kind | None, None) if col.nullable else (kind, ...)
    return create_model(
        f"{contract.use_case}_record",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        **fields,
    )


class Prediction(BaseModel):
    prediction_id: str = Field(description="uuid4 hex, the key of this prediction in the prediction log")
    probability: float = Field(description="binary: P(positive class); multiclass: P(predicted class)")
    label: str
    probabilities: dict[str, float] | None = Field(default=None, description="multiclass: P(class) per class")


class PredictResponse(BaseModel):
    request_id: str = Field(description="uuid4 hex, shared by the predictions of this request")
    model_name: str
    model_version: str
    predictions: list[Prediction]
