"""Personal data in a contract, and the one transform ingestion and serving apply to it.

A spec declares its PII columns under ``data.pii``: each is pseudonymised (keyed HMAC-SHA256, so the same
person gets the same pseudonym under one key and no one without the key can recompute it), dropped (kept
as an empty column), or generalised (a date to its month or year, a number to a band such as 5-year ages).
One pseudonymised column is the subject key: what ``aimass erase`` is given to find a person's rows.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:  # specs (so every CLI command) import this module: Arrow loads when data is touched
    import pyarrow as pa

PREFIX = "ps_"
ISO_DATE = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"


class PiiColumn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    action: Literal["pseudonymise", "drop", "generalise"]
    # generalise: "month"/"year" for ISO dates (YYYY-MM-DD), "band" for numbers in bands of ``width``.
    rule: Literal["month", "year", "band"] | None = None
    width: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _rule_fits(self) -> PiiColumn:
        if self.action == "generalise" and self.rule is None:
            raise ValueError(f"pii column {self.name!r}: generalise needs a rule (month, year or band)")
        if self.action != "generalise" and self.rule is not None:
            raise ValueError(f"pii column {self.name!r}: only generalise takes a rule")
        if (self.rule == "band") != (self.width is not None):
            raise ValueError(f"pii column {self.name!r}: a band rule needs 'width', other rules none")
        return self


class PiiSpec(BaseModel):
    """``data.pii`` of a spec: the personal columns, the subject key among them, and what erasing a
    subject does to a champion trained on them (``retrain`` launches training through the gate,
    ``review`` only flags it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: tuple[PiiColumn, ...] = Field(min_length=1)  # a tuple: contracts are hashed (row rules cache)
    subject_key: str
    on_erasure: Literal["retrain", "review"] = "review"

    @model_validator(mode="after")
    def _subject_is_pseudonymised(self) -> PiiSpec:
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"pii columns {duplicated} are declared twice")
        subject = next((c for c in self.columns if c.name == self.subject_key), None)
        if subject is None or subject.action != "pseudonymise":
            raise ValueError(f"subject_key {self.subject_key!r} must be a pii column that is pseudonymised")
        return self

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _hasher(key: bytes):
    """HMAC-SHA256 (RFC 2104) with the keyed inner and outer states computed once: per value only two
    state copies and two updates, twice as fast as ``hmac.digest``, the same result (raw digest)."""
    block = key if len(key) <= 64 else hashlib.sha256(key).digest()
    block = block.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block)).copy

    def digest(value: bytes) -> bytes:
        first = inner()
        first.update(value)
        second = outer()
        second.update(first.digest())
        return second.digest()

    return digest


def pseudonym(value: str, key: bytes) -> str:
    """The pseudonym of one value: what a subject key is looked up by, and what serving writes."""
    return PREFIX + hmac.digest(key, value.encode("utf-8"), "sha256").hex()


def pseudonymise(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """HMAC each distinct value once (a column repeats its subjects), then spread the results by index."""
    import binascii

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(pc.cast(values, pa.string()))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    distinct = encoded.dictionary.cast(pa.binary()).to_pylist()
    # One buffer of hex digests, cut into strings by fixed offsets: no Python string per value.
    hexed = binascii.hexlify(b"".join(map(_hasher(key), distinct)))
    offsets = np.arange(0, (len(distinct) + 1) * 64, 64, dtype=np.int32)
    digests = pa.StringArray.from_buffers(len(distinct), pa.py_buffer(offsets), pa.py_buffer(hexed))
    return pc.take(pc.binary_join_element_wise(PREFIX, digests, ""), encoded.indices)


def _generalise(values: pa.Array, column: PiiColumn) -> tuple[pa.Array, pa.Array]:
    """(generalised values, mask of present values that could not be read); unreadable values become null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    present = pc.and_(pc.is_valid(text), pc.not_equal(text, ""))
    if column.rule in ("month", "year"):
        # An ISO date by its shape, then cut to its month or year: parsing and formatting each date as a
        # timestamp cost ten times more.
        valid = pc.match_substring_regex(text, ISO_DATE)
        out = pc.if_else(valid, pc.utf8_slice_codeunits(text, 0, 7 if column.rule == "month" else 4), None)
        return out, pc.and_(present, pc.invert(valid))
    numbers = _numbers(text)
    low = pc.multiply(pc.floor(pc.divide(numbers, column.width)), column.width)
    high = pc.add(low, column.width)
    band = pc.binary_join_element_wise(_fmt(low), _fmt(high), "-")
    return band, pc.and_(present, pc.is_null(numbers))


def _numbers(text: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    return pc.cast(pc.if_else(valid, text, pa.scalar(None, pa.string())), pa.float64())


def _fmt(numbers: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    # Whole-number bounds print without ".0": "35-40", not "35.0-40.0".
    whole = pc.equal(numbers, pc.floor(numbers))
    as_int = pc.cast(pc.cast(pc.if_else(whole, numbers, 0.0), pa.int64()), pa.string())
    return pc.if_else(whole, as_int, pc.cast(numbers, pa.string()))


def protect(table: pa.Table, spec: PiiSpec | None, key: bytes | None) -> tuple[pa.Table, dict[str, pa.Array]]:
    """The table with every PII column transformed, and per generalised column the mask of present values
    it could not read (they are nulled here; ingestion rejects those rows). Columns absent from the table
    (a served request that does not send them) are left absent."""
    if spec is None:
        return table, {}
    import pyarrow as pa
    import pyarrow.compute as pc

    unreadable: dict[str, pa.Array] = {}
    for column in spec.columns:
        if column.name not in table.column_names:
            continue
        index = table.column_names.index(column.name)
        values = table.column(index)
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if column.action == "pseudonymise":
            if key is None:
                raise ValueError(f"column {column.name!r} is pseudonymised but no PII key was given")
            out = pseudonymise(values, key)
        elif column.action == "drop":
            out = pa.nulls(len(values), pa.string())
        else:
            out, bad = _generalise(values, column)
            if pc.any(bad).as_py():
                unreadable[column.name] = bad
        table = table.set_column(index, column.name, pc.cast(out, pa.string()))
    return table, unreadable
