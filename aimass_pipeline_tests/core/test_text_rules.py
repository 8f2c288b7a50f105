"""A text column's rules read the same in the Arrow row rules, the served request model and the dbt tests:
a text over max_chars (code points as written, as JSON Schema counts) and a blank or missing text are
refused; what is kept is stored and served NFC, scrubbed."""

import unicodedata

import pyarrow as pa
import pydantic
import pytest

from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.row_rules import check_rows
from aimass_pipeline.serving.schema import record_model
from aimass_pipeline.transformation.dbt_contract import rule_tests

CONTRACT = Contract(
    use_case="notes",
    key="id",
    target="y",
    classes=("no", "yes"),
    features=(Column("note", "text", nullable=False, max=12, scrub=True),),
)
FITS = unicodedata.normalize("NFD", "café")  # 5 code points as written, 4 once composed
DECOMPOSED = unicodedata.normalize("NFD", "crème brûlée")  # 12 characters, 14 code points as written
TEXTS = [FITS, "x" * 13, DECOMPOSED, "   ", None]
REFUSED = [False, True, True, True, True]


def test_row_rules_and_the_served_model_refuse_the_same_texts() -> None:
    table = pa.table({"id": ["1", "2", "3", "4", "5"], "y": ["no"] * 5, "note": pa.array(TEXTS, pa.string())})
    checked = check_rows(table, CONTRACT, normalise=True)
    assert checked.bad.tolist() == REFUSED
    assert {v.rule for v in checked.violations} == {"text.max_chars", "not_null"}
    assert checked.values["note"][0].as_py() == unicodedata.normalize("NFC", FITS)
    served = record_model(CONTRACT)
    for text, refused in zip(TEXTS, REFUSED, strict=True):
        if refused:
            with pytest.raises(pydantic.ValidationError):
                served.model_validate({"note": text})
        else:
            assert served.model_validate({"note": text}).note == unicodedata.normalize("NFC", text)
    assert served.model_validate({"note": "555 123 4567"}).note == "<phone>"


def test_the_dbt_tests_check_the_length() -> None:
    _, model_tests = rule_tests(CONTRACT, "stg_notes")
    lengths = [t["contract_text_length"] for t in model_tests if "contract_text_length" in t]
    assert lengths == [{"name": "contract_text_length_stg_notes", "arguments": {"lengths": {"note": 12}}}]
