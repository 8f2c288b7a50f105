"""The contract's rule set, defined once: every layer that accepts or refuses a record derives its checks
from ``contract_rules`` and normalises a category the way ``Vocabulary`` does.

Ingestion and preprocessing run the rules with Arrow (``core.row_rules``), the served pydantic model with
field constraints (``serving.schema``), the clean and model tables with Great Expectations
(``core.validation``) and the warehouse with generated dbt tests (``transformation.dbt_contract``). Each maps
every rule kind below and fails on a kind it does not know, so a new kind cannot be left out of a layer.

The category rule: a value matches a declared category when both are equal once surrounding ASCII
whitespace is removed and the letters A-Z are lower-cased (``fold``); the value is then stored and served
in the declared spelling. Folding is limited to ASCII so that it is exact everywhere it is expressed: the
same function in Python and a regular expression in the OpenAPI document, which the clients and the
schemathesis checks read. Other letters (``É``/``é``) must be written as declared.
"""

from __future__ import annotations

import string
import sys
from dataclasses import dataclass, field
from functools import cache

from aimass_pipeline.core.contracts import Column, Contract

# What surrounds a value without being part of it: a key, a number or a category is compared without it.
WHITESPACE = " \t\n\r\f\v"
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# Whole numbers from 2**53 on cannot all be told apart once stored as float64, as the clean table stores
# them (2**53 + 1 reads as 2**53): an int column holds whole numbers of a smaller magnitude.
INT_LIMIT = 2**53 - 1
FLOAT_LIMIT = sys.float_info.max
_SPACES = "[" + "".join(f"\\u{ord(c):04X}" for c in WHITESPACE) + "]*"
# A key made of nothing but whitespace is missing (a regular expression, for Great Expectations).
BLANK = f"^{_SPACES}$"

KEY_PRESENT = "key.not_null"
KEY_UNIQUE = "key.unique"
NUMBER = "type.numeric"
WHOLE = "type.integer"
MIN = "range.min"
MAX = "range.max"
CATEGORY = "category.allowed"
REQUIRED = "not_null"
TARGET = "target.allowed"
TEXT_LENGTH = "text.max_chars"  # code points as written, before NFC and the PII scrub (core.text_contract)
KINDS = (KEY_PRESENT, KEY_UNIQUE, NUMBER, WHOLE, MIN, MAX, CATEGORY, REQUIRED, TARGET, TEXT_LENGTH)


def fold(value: str) -> str:
    """The form in which a value and a declared category are compared."""
    return value.strip(WHITESPACE).translate(_ASCII_LOWER)


def _pattern_char(ch: str) -> str:
    if ch in string.ascii_lowercase:
        return f"[{ch.upper()}{ch}]"
    if ch in string.digits or ch == "_" or not ch.isascii():
        return ch  # no regular expression gives these a meaning
    # Punctuation and spaces as \u00HH: read the same in ECMA-262 (JSON Schema), Python and Rust.
    return f"\\u{ord(ch):04X}"


@dataclass(frozen=True)
class Vocabulary:
    """The declared categories of a column, or the classes of the target."""

    declared: tuple[str, ...]
    lookup: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        problems = declaration_problems(self.declared)
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "lookup", {fold(v): v for v in self.declared})

    def canonical(self, value: str) -> str | None:
        """The declared spelling ``value`` matches, or None."""
        return self.lookup.get(fold(value))

    def require(self, value: str) -> str:
        found = self.canonical(value)
        if found is None:
            raise ValueError(f"{value!r} is {self.message}")
        return found

    @property
    def message(self) -> str:
        return f"not one of {list(self.declared)} (letter case and surrounding spaces are ignored)"

    @property
    def pattern(self) -> str:
        """A regular expression (JSON Schema dialect) matching exactly the values ``canonical`` accepts."""
        words = "|".join("".join(_pattern_char(c) for c in fold(v)) for v in self.declared)
        return f"^{_SPACES}(?:{words}){_SPACES}$"


def declaration_problems(values: tuple[str, ...] | list[str]) -> list[str]:
    """What makes a list of declared categories or classes unusable under the category rule."""
    problems = [f"{v!r} has surrounding whitespace" for v in values if v != v.strip(WHITESPACE)]
    problems += [f"{v!r} is empty" for v in values if not v.strip(WHITESPACE)]
    seen: dict[str, str] = {}
    for v in values:
        if fold(v) in seen:
            problems.append(f"{seen[fold(v)]!r} and {v!r} are the same once letter case is ignored")
        seen.setdefault(fold(v), v)
    return problems


@dataclass(frozen=True)
class Rule:
    kind: str  # one of KINDS
    column: str
    message: str
    bound: float | None = None  # MIN / MAX
    vocabulary: Vocabulary | None = None  # CATEGORY / TARGET


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) <= INT_LIMIT else repr(float(value))


def bounds(col: Column) -> tuple[float, float]:
    """The values a numeric column admits: its declared range within what its kind holds exactly."""
    limit = INT_LIMIT if col.kind == "int" else FLOAT_LIMIT
    low = -limit if col.min is None else max(col.min, -limit)
    high = limit if col.max is None else min(col.max, limit)
    return low, high


def column_rules(col: Column) -> list[Rule]:
    """A feature column's rules, in the order a layer reports the first one broken."""
    rules = []
    if col.kind in ("int", "float"):
        low, high = bounds(col)
        rules.append(Rule(NUMBER, col.name, f"not a finite number ({col.kind} expected)"))
        if col.kind == "int":
            rules.append(Rule(WHOLE, col.name, "not a whole number"))
        rules.append(Rule(MIN, col.name, f"below {_fmt(low)}", bound=low))
        rules.append(Rule(MAX, col.name, f"above {_fmt(high)}", bound=high))
    elif col.kind == "category":
        vocabulary = Vocabulary(col.categories)
        rules.append(Rule(CATEGORY, col.name, vocabulary.message, vocabulary=vocabulary))
    elif col.kind == "text":
        if col.max is None:
            raise ValueError(f"text column {col.name!r} needs a maximum length")
        rules.append(Rule(TEXT_LENGTH, col.name, f"longer than {int(col.max)} characters", bound=col.max))
    else:
        raise ValueError(f"column {col.name!r}: unknown kind {col.kind!r}")
    if not col.nullable:
        rules.append(Rule(REQUIRED, col.name, "missing value in a required column"))
    return rules


@cache
def contract_rules(contract: Contract) -> tuple[Rule, ...]:
    """Every rule of the contract: the key's, each feature column's, then the target's."""
    classes = Vocabulary(contract.classes)
    return (
        Rule(KEY_PRESENT, contract.key, "missing key"),
        Rule(KEY_UNIQUE, contract.key, "the key appears more than once"),
        *(rule for col in contract.features for rule in column_rules(col)),
        Rule(TARGET, contract.target, f"target {classes.message}", vocabulary=classes),
    )


def unknown_kind(rule: Rule, layer: str) -> NotImplementedError:
    return NotImplementedError(f"{layer} has no check for the contract rule kind {rule.kind!r}")
