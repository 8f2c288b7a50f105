"""Generated contracts and records, rendered for every layer that applies the contract, and each layer's
verdict on them: which records it accepts, which it refuses.

A record holds logical values, each rendered the way a layer receives it: text for the landed files that
ingestion and preprocessing read, JSON for the served model, and typed (float64 numbers; the key trimmed;
categories and classes in their declared spelling where they match one) for the clean and model tables
that Great Expectations and dbt check. A typed table cannot hold text that is no number, nor NaN (pandas
reads it as missing): records with such values have no typed form (``Record.typed_ok``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import assume
from hypothesis import strategies as st

from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.rules import WHITESPACE, Vocabulary, fold

KEY, TARGET = "id", "Outcome"
NAMES = ["Amount", "level", "Region", "x_1", "Travel", "score"]
# Letters whose case the rule folds (ASCII) and some it does not (é/É), digits, punctuation and a quote
# (dbt must escape it), an inner space.
WORD = st.text(alphabet="abXYz_-'é É19", min_size=1, max_size=5).filter(lambda w: w == w.strip(WHITESPACE))
# Text that is no number (a number padded with a no-break space included: only WHITESPACE is trimmed).
JUNK = [
    "abc",
    "",
    " ",
    "1,5",
    "1_000",
    "0x10",
    "--1",
    "1e",
    "e5",
    ".",
    "one",
    "5 5",
    "١٢",
    "\u00a05",
    "5\u2003",
]
# Around a category: what the rule trims and what it does not.
PAD = st.sampled_from(["", " ", "\t", "  ", "\n", "\u00a0", "\u2003"])
NUMBER_PAD = st.sampled_from(["", " ", "\t", "  ", "\r\n"])
SPECIAL = [("inf", math.inf), ("Infinity", math.inf), ("-inf", -math.inf), ("-Infinity", -math.inf)]
SPECIAL += [("nan", math.nan), ("NaN", math.nan)]


@dataclass(frozen=True)
class Value:
    text: str | None  # in a landed file
    json: Any  # in a request
    typed: Any  # in the clean table (None: missing)
    typed_ok: bool = True  # False: no typed table can hold it


@dataclass(frozen=True)
class Case:
    contract: Contract
    records: list[dict[str, Value]]

    def __repr__(self) -> str:
        columns = [
            f"{c.name}: {c.kind}{'' if c.nullable else ' required'}"
            + (f" {list(c.categories)}" if c.categories else f" [{c.min}, {c.max}]")
            for c in self.contract.features
        ]
        texts = [{name: v.text for name, v in r.items()} for r in self.records]
        return f"Case(classes={list(self.contract.classes)}, columns={columns}, records={texts})"

    @property
    def typed_rows(self) -> list[int]:
        return [i for i, r in enumerate(self.records) if all(v.typed_ok for v in r.values())]


def vocabularies(min_size: int, max_size: int) -> st.SearchStrategy[tuple[str, ...]]:
    """Declared categories or classes: distinct once folded, as a spec must declare them."""
    return st.lists(WORD, min_size=min_size, max_size=max_size, unique_by=fold).map(tuple)


@st.composite
def columns(draw: st.DrawFn, name: str) -> Column:
    kind = draw(st.sampled_from(["int", "float", "category"]))
    nullable = draw(st.booleans())
    if kind == "category":
        return Column(name, kind, nullable, categories=draw(vocabularies(1, 4)))
    bound = st.none() | st.integers(-50, 50).map(float) | st.sampled_from([-0.5, 0.25, 2.5])
    low, high = draw(bound), draw(bound)
    if low is not None and high is not None and low > high:
        low, high = high, low
    # What a spec may declare (ColumnSpec): an int column's range holds a whole number.
    assume(kind == "float" or low is None or high is None or math.ceil(low) <= math.floor(high))
    return Column(name, kind, nullable, low, high)


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    return Contract(
        use_case="generated",
        key=KEY,
        target=TARGET,
        classes=draw(vocabularies(2, 3)),
        features=tuple(draw(columns(n)) for n in names),
        max_reject_share=0.99,
    )


def respelled(draw: st.DrawFn, word: str) -> str:
    """``word`` with some letters' case swapped (non-ASCII ones too) and padding around it."""
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    body = "".join(c.swapcase() if flip else c for c, flip in zip(word, flips, strict=True))
    return draw(PAD) + body + draw(PAD)


def _vocab_value(draw: st.DrawFn, vocabulary: Vocabulary) -> Value:
    choice = draw(st.sampled_from(["declared", "respelled", "respelled", "unknown", "missing"]))
    if choice == "missing":
        return Value(None, None, None)
    if choice == "unknown":
        text = draw(WORD | st.sampled_from(JUNK))
    elif choice == "respelled":
        text = respelled(draw, draw(st.sampled_from(vocabulary.declared)))
    else:
        text = draw(st.sampled_from(vocabulary.declared))
    return Value(text, text, vocabulary.canonical(text) or text)


def _number_text(draw: st.DrawFn, number: float | int) -> str:
    text = repr(number) if isinstance(number, float) else str(number)
    if draw(st.booleans()) and not text.startswith("-"):
        text = "+" + text
    return draw(NUMBER_PAD) + text + draw(NUMBER_PAD)


def _numeric_value(draw: st.DrawFn, col: Column) -> Value:
    edges = [b for b in (col.min, col.max) if b is not None]
    near = [e + d for e in edges for d in (-1, -0.5, 0.0, 0.5, 1)]
    near += [2**53 - 1, 2**53, 2**53 + 1, -(2**53), 10**20, 1e300, 5e-324]
    number = draw(
        st.integers(-80, 80)
        | st.floats(-80, 80, allow_nan=False, allow_infinity=False)
        | st.sampled_from(near)
        | st.sampled_from([3.0, -0.0, 1e-9])
    )
    choice = draw(st.sampled_from(["number"] * 6 + ["special", "junk", "missing"]))
    if choice == "missing":
        return Value(None, None, None)
    if choice == "junk":
        text = draw(st.sampled_from(JUNK))
        return Value(text, text, None, typed_ok=False)
    if choice == "special":
        text, special = draw(st.sampled_from(SPECIAL))
        return Value(text, special, special, typed_ok=not math.isnan(special))
    return Value(_number_text(draw, number), number, float(number))


def _key(draw: st.DrawFn, i: int) -> Value:
    choice = draw(st.sampled_from(["plain"] * 5 + ["padded", "blank", "missing"]))
    if choice == "missing":
        return Value(None, None, None)
    if choice == "blank":
        text = draw(st.sampled_from(["", " ", "\t "]))
        return Value(text, text, "")
    text = f"K{i}" if choice == "plain" else draw(PAD) + f"K{i}" + draw(PAD)
    return Value(text, text, text.strip(WHITESPACE))


@st.composite
def cases(draw: st.DrawFn, max_records: int = 6) -> Case:
    contract = draw(contracts())
    classes = Vocabulary(contract.classes)
    records = []
    for i in range(draw(st.integers(1, max_records))):
        record = {KEY: _key(draw, i), TARGET: _vocab_value(draw, classes)}
        for col in contract.features:
            if col.kind == "category":
                record[col.name] = _vocab_value(draw, Vocabulary(col.categories))
            else:
                record[col.name] = _numeric_value(draw, col)
        records.append(record)
    return Case(contract, records)


# --- each layer's input -------------------------------------------------------------------------------


def text_table(case: Case) -> pa.Table:
    """The records as ingestion reads a landed file: text columns and the line each came from."""
    columns = {c: pa.array([r[c].text for r in case.records], pa.string()) for c in case.contract.raw_columns}
    columns["_source_row"] = pa.array(range(len(case.records)), pa.int64())
    return pa.table(columns)


def raw_frame(case: Case) -> pd.DataFrame:
    """The records as preprocessing reads them from the raw zone."""
    frame = text_table(case).to_pandas()
    return frame.assign(_batch_id="b1", _source_file="generated.csv")


def typed_frame(case: Case, rows: list[int]) -> pd.DataFrame:
    """The clean table holding ``rows``, every value as preprocessing would store it, unchecked."""
    contract = case.contract
    frame = pd.DataFrame(
        {
            c: pd.Series(
                [case.records[i][c].typed for i in rows],
                dtype="float64" if c in contract.numeric_features else object,
            )
            for c in contract.raw_columns
        }
    )
    return frame.assign(_batch_id="b1", _source_file="generated.csv")


def request_json(case: Case, i: int) -> str:
    return json.dumps({c.name: case.records[i][c.name].json for c in case.contract.features})


# --- each layer's verdict: the indexes of the records it refuses ------------------------------------------


def ingestion_refusals(case: Case) -> tuple[set[int], set[int]]:
    """The records ingestion refuses, and those it refuses for a feature's rule (the served model's part)."""
    from aimass_pipeline.collection.ingestion.rules import KeyIndex, violations

    found = violations(text_table(case), case.contract, KeyIndex())
    features = case.contract.feature_names
    return (
        {int(i) for v in found for i in np.flatnonzero(v.mask)},
        {int(i) for v in found if v.column in features for i in np.flatnonzero(v.mask)},
    )


def preprocessing_refusals(case: Case) -> tuple[set[int], pd.DataFrame]:
    """Rows named by clean_records' errors, asked again without them until it accepts the rest."""
    from aimass_pipeline.preprocessing.cleaning import clean_records

    raw, refused = raw_frame(case), set()
    while True:
        try:
            clean, _ = clean_records(raw[~raw["_source_row"].isin(refused)], case.contract)
        except DataContractError as exc:
            assert exc.rows and not set(exc.rows) & refused, exc
            refused |= set(exc.rows)
            continue
        return refused, clean


def gx_refusals(case: Case, rows: list[int], expectations: list) -> set[int]:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("d")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="s", expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="v", data=batch, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": typed_frame(case, rows)}, result_format={"result_format": "COMPLETE"}
    )
    refused = set()
    for r in result.results:
        assert not r.exception_info.get("raised_exception"), r.exception_info
        refused |= {rows[i] for i in (r.result or {}).get("unexpected_index_list") or []}
    return refused


def serving_refusals(case: Case) -> tuple[set[int], dict[int, dict]]:
    from pydantic import ValidationError

    from aimass_pipeline.serving.schema import record_model

    model, refused, accepted = record_model(case.contract), set(), {}
    for i in range(len(case.records)):
        try:
            accepted[i] = dict(model.model_validate_json(request_json(case, i)).__dict__)
        except ValidationError:
            refused.add(i)
    return refused, accepted
