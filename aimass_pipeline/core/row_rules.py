"""The contract's rules (``core.rules``) over a table of text columns, vectorised with Arrow compute: the one
implementation that ingestion (each landed file, streamed) and preprocessing (the raw zone) both run, so the
two accept the same rows and preprocessing stores exactly what ingestion let through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    WHITESPACE,
    WHOLE,
    Vocabulary,
    contract_rules,
    unknown_kind,
)
from aimass_pipeline.core.text_contract import normalise_arrow

# A number as text once WHITESPACE is trimmed; what Arrow's cast reads besides (inf, nan) is no finite number.
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NO_TEXT = pa.scalar(None, pa.string())
_NO_NUMBER = pa.scalar(None, pa.float64())


@dataclass(frozen=True)
class Violation:
    rule: str
    column: str
    message: str
    mask: np.ndarray  # True for the rows that break the rule


@dataclass(frozen=True)
class RowCheck:
    rows: int
    violations: list[Violation]  # the rules some row breaks, in the contract's order
    key: pa.ChunkedArray  # trimmed
    # With ``normalise``: every column as the clean table stores it, numbers as float64 and categories and
    # classes in their declared spelling (a value matching none stays as it was: its row is refused).
    values: dict[str, pa.ChunkedArray]

    @property
    def bad(self) -> np.ndarray:
        masks = [v.mask for v in self.violations]
        return np.logical_or.reduce(masks) if masks else np.zeros(self.rows, dtype=bool)


def as_mask(condition: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(condition, False).to_numpy(zero_copy_only=False), dtype=bool)


def trim(text: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.utf8_trim(text, characters=WHITESPACE)


class _Numbers:
    """One numeric column's text, parsed once for all its rules."""

    def __init__(self, text: pa.ChunkedArray, kind: str) -> None:
        self.text = text
        self.ints = None
        if kind == "int":
            # The common case of an int column, every value plain digits, in one cast; Arrow's integer
            # cast also reads hexadecimal (0x10), which no number in a landed file is meant to be. Two
            # exact prefix scans: ignore_case goes through a regular expression, ten times slower.
            try:
                ints = pc.cast(text, pa.int64())
                if not any(pc.any(pc.starts_with(text, prefix)).as_py() for prefix in ("0x", "0X")):
                    self.ints = ints
            except pa.ArrowInvalid:
                pass
        if self.ints is not None:
            self.bad = np.zeros(len(text), dtype=bool)
            self.finite = self.ints
            return
        try:
            values = pc.cast(text, pa.float64())
            unparsed = np.zeros(len(text), dtype=bool)
        except pa.ArrowInvalid:
            # The fast cast stops at the first bad value; only then find every one, allowing padding.
            stripped = trim(text)
            ok = pc.fill_null(pc.match_substring_regex(stripped, _NUMBER), False)
            unparsed = as_mask(pc.and_(pc.is_valid(text), pc.invert(ok)))
            values = pc.cast(pc.if_else(ok, stripped, _NO_TEXT), pa.float64())
        nan, infinite = as_mask(pc.is_nan(values)), as_mask(pc.is_inf(values))
        self.bad = unparsed | nan | infinite
        # NaN is no value a table can tell from a missing one; an infinity stays for the checks downstream.
        self.values = pc.if_else(pa.array(nan), _NO_NUMBER, values) if nan.any() else values
        self.finite = (
            pc.if_else(pa.array(infinite), _NO_NUMBER, self.values) if infinite.any() else self.values
        )

    def as_float(self) -> pa.ChunkedArray:
        # Out-of-range integers are refused anyway; safe=False only spares the cast an error on them.
        return pc.cast(self.ints, pa.float64(), safe=False) if self.ints is not None else self.values


def _vocabulary(text: pa.ChunkedArray, vocabulary: Vocabulary) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Values in their declared spelling, and the mask of non-null values matching no declared one."""
    declared = pa.array(vocabulary.declared, pa.string())
    other = as_mask(pc.and_(pc.is_valid(text), pc.invert(pc.is_in(text, value_set=declared))))
    if not other.any():
        return text, other
    # Most files spell every value as declared; the others are folded once per distinct spelling.
    spellings = pc.unique(text.filter(pa.array(other))).to_pylist()
    keys = pa.array([*vocabulary.declared, *spellings], pa.string())
    found = pa.array([*vocabulary.declared, *(vocabulary.canonical(s) for s in spellings)], pa.string())
    matched = pc.take(found, pc.index_in(text, value_set=keys))
    outside = as_mask(pc.and_(pc.is_valid(text), pc.is_null(matched)))
    return pc.coalesce(matched, text), outside


def check_rows(table: pa.Table, contract: Contract, *, normalise: bool = False) -> RowCheck:
    """Every row rule of the contract over ``table`` (text columns). ``key.unique`` spans rows and files:
    ingestion refuses a key repeated within a file, preprocessing lets the newest batch win."""
    key = trim(table[contract.key])
    found, values, numbers = [], {contract.key: key}, {}
    for rule in contract_rules(contract):
        text = table[rule.column]
        if rule.kind == KEY_PRESENT:
            mask = as_mask(pc.or_kleene(pc.is_null(key), pc.equal(key, "")))
        elif rule.kind == KEY_UNIQUE:
            continue
        elif rule.kind in (NUMBER, WHOLE, MIN, MAX):
            if rule.column not in numbers:
                numbers[rule.column] = _Numbers(text, contract.column(rule.column).kind)
            parsed = numbers[rule.column]
            if rule.kind == NUMBER:
                mask = parsed.bad
            elif rule.kind == WHOLE:
                whole = parsed.ints is not None
                mask = np.zeros(len(text), bool) if whole else as_mask(_fraction(parsed.finite))
            else:
                compare = pc.less if rule.kind == MIN else pc.greater
                mask = as_mask(compare(parsed.finite, rule.bound))
        elif rule.kind in (CATEGORY, TARGET):
            values[rule.column], mask = _vocabulary(text, rule.vocabulary)
            if rule.kind == TARGET:
                mask |= as_mask(pc.is_null(text))
        elif rule.kind == TEXT_LENGTH:
            # Counted as written (code points, before NFC and the scrub), as the served schema's maxLength counts.
            values[rule.column] = normalise_arrow(text, scrubbed=contract.column(rule.column).scrub)
            mask = as_mask(pc.greater(pc.utf8_length(text), rule.bound))
        elif rule.kind == REQUIRED:
            mask = as_mask(pc.is_null(text))
            if contract.column(rule.column).kind == "text":  # a blank text says nothing: it is missing
                mask |= as_mask(pc.equal(trim(text), ""))
        else:
            raise unknown_kind(rule, "the Arrow row rules")
        found.append(Violation(rule.kind, rule.column, rule.message, mask))
    if normalise:
        values |= {name: parsed.as_float() for name, parsed in numbers.items()}
    return RowCheck(table.num_rows, [v for v in found if v.mask.any()], key, values)


def _fraction(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.not_equal(pc.floor(values), values)
