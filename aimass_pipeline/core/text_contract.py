"""Free text in the contract: the ``text:`` declaration, how a text value is normalised and scrubbed, and the
tokens that profiles and drift monitoring count.

A text column is one more feature column of kind ``text`` (``Column.max`` holds its ``max_chars``), so every
layer derives its checks from the one rule set (``core.rules``: ``text.max_chars``). What only text needs
lives here and is applied the same way wherever text enters:

- Unicode is normalised to NFC (``é`` typed as ``e`` + combining accent is the same word as ``é``) before
  the length is checked, before storage, and in the served request model, so training and serving see the
  same characters;
- a column declared ``pii: scrub`` has e-mail addresses, phone numbers and long digit runs replaced by the
  tokens ``<email>``, ``<phone>`` and ``<number>`` before the raw zone stores it (the model learns that a
  contact was given, never whose);
- ``tokens`` is the word rule of the TF-IDF features (scikit-learn's default ``token_pattern`` on lower
  case), so a profile's vocabulary is the features' vocabulary.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import pyarrow as pa

    from aimass_pipeline.core.contracts import Contract

# scikit-learn's default token_pattern: words of two or more word characters.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_TOKEN = re.compile(TOKEN_PATTERN)
# RE2 (Arrow) and Python's re read these alike; applied in this order, so an e-mail's digits stay in <email>.
SCRUBS: tuple[tuple[str, str], ...] = (
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "<email>"),
    (r"\+?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,4}\b", "<phone>"),
    (r"\d{6,}", "<number>"),
)


class TextSpec(BaseModel):
    """``text: {column, max_chars, language}``: one free-text feature column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(min_length=1)
    # At most a quarter of ingestion's 1 MiB read block, so any allowed text fits in one block.
    max_chars: int = Field(default=10_000, ge=1, le=250_000)
    # An ISO 639-1 code, recorded in the profile; the word rule above is language-neutral (Unicode \w).
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    nullable: bool = False
    pii: Literal["keep", "scrub"] = "keep"


def normalise(value: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFC", value)


def scrub(value: str) -> str:
    for pattern, token in SCRUBS:
        value = re.sub(pattern, token, value)
    return value


def normalise_arrow(text: pa.ChunkedArray, *, scrubbed: bool) -> pa.ChunkedArray:
    """``normalise`` (and ``scrub``) over a whole Arrow column of strings; nulls stay null."""
    import unicodedata

    import pyarrow as pa
    import pyarrow.compute as pc

    # Python's unicodedata, not pc.utf8_normalize: this pyarrow build's returns NFD text unchanged. Most
    # texts are NFC already, and is_normalized answers that without building a copy.
    values = text.to_pylist()
    if not all(v is None or unicodedata.is_normalized("NFC", v) for v in values):
        normalised = [None if v is None else unicodedata.normalize("NFC", v) for v in values]
        text = pa.chunked_array([pa.array(normalised, pa.string())])
    if scrubbed:
        for pattern, token in SCRUBS:
            text = pc.replace_substring_regex(text, pattern=pattern, replacement=token)
    return text


def tokens(value: str) -> list[str]:
    return _TOKEN.findall(value.lower())


def document_frequencies(texts: Iterable[str | None]) -> tuple[Counter[str], int]:
    """In how many texts each token occurs, and how many texts there were (missing ones skipped)."""
    counts: Counter[str] = Counter()
    n = 0
    for text in texts:
        if text is None or text != text:  # NaN from pandas
            continue
        counts.update(set(tokens(text)))
        n += 1
    return counts, n


def oov_share(texts: Iterable[str | None], vocabulary: set[str]) -> float:
    """The share of token occurrences not in ``vocabulary`` (0 when there are no tokens)."""
    seen = unknown = 0
    for text in texts:
        if text is None or text != text:
            continue
        words = tokens(text)
        seen += len(words)
        unknown += sum(1 for w in words if w not in vocabulary)
    return unknown / seen if seen else 0.0


def prepare_text(table: pa.Table, contract: Contract) -> pa.Table:
    """``table`` with each text column of ``contract`` normalised, and scrubbed where declared PII."""
    for col in contract.features:
        if col.kind == "text" and col.name in table.column_names:
            normalised = normalise_arrow(table[col.name], scrubbed=col.scrub)
            table = table.set_column(table.schema.get_field_index(col.name), col.name, normalised)
    return table
