"""The contract's row rules over one chunk of string columns, vectorised with Arrow compute.

Rule names and messages follow preprocessing/cleaning.py; ranges, which preprocessing leaves to the checks,
are ``range.min`` / ``range.max``, and a key repeated within a file is ``key.unique``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aimass_pipeline.core.contracts import Column, Contract

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass(frozen=True)
class Violation:
    rule: str
    column: str
    message: str
    mask: np.ndarray  # True for the chunk's rows that break the rule


def as_mask(condition: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(condition, False).to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(text: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Values as float64 and the mask of non-empty text that is no finite number."""
    try:
        values = pc.cast(text, pa.float64())
        bad = np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:
        # The fast cast stops at the first bad value; only then find every one, allowing padding spaces.
        stripped = pc.utf8_trim_whitespace(text)
        ok = pc.fill_null(pc.match_substring_regex(stripped, _NUMBER), False)
        bad = as_mask(pc.and_(pc.is_valid(text), pc.invert(ok)))
        values = pc.cast(pc.if_else(ok, stripped, pa.scalar(None, pa.string())), pa.float64())
    infinite = as_mask(pc.invert(pc.is_finite(values)))
    if infinite.any():
        values = pc.if_else(pa.array(infinite), pa.scalar(None, pa.float64()), values)
    return values, bad | infinite


def _whole_numbers(text: pa.ChunkedArray) -> tuple[pa.ChunkedArray | None, np.ndarray | None]:
    """The common case of an int column, every value plain digits, in one cast; (None, None) otherwise."""
    try:
        return pc.cast(text, pa.int64()), np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:
        return None, None


def _outside(text: pa.ChunkedArray, allowed: tuple[str, ...]) -> np.ndarray:
    """Non-null values not in ``allowed`` once stripped and lower-cased, as preprocessing compares them."""
    value_set = pa.array(allowed, pa.string())
    outside = as_mask(pc.and_(pc.is_valid(text), pc.invert(pc.is_in(text, value_set=value_set))))
    # Normalising every value costs more than the check itself; most files need it for none.
    rows = np.flatnonzero(outside)
    if rows.size:
        normalised = pc.utf8_lower(pc.utf8_trim_whitespace(text.take(pa.array(rows))))
        outside[rows] = ~as_mask(pc.is_in(normalised, value_set=value_set))
    return outside


def _column_violations(chunk: pa.Table, col: Column) -> list[Violation]:
    text = chunk[col.name]
    found = []
    if col.kind in ("int", "float"):
        values, bad = _whole_numbers(text) if col.kind == "int" else (None, None)
        if values is None:
            values, bad = _numbers(text)
        found.append(Violation("type.numeric", col.name, f"not a number ({col.kind} expected)", bad))
        if col.kind == "int" and values.type != pa.int64():
            fraction = as_mask(pc.not_equal(pc.floor(values), values))
            found.append(Violation("type.integer", col.name, "not a whole number", fraction))
        if col.min is not None:
            found.append(
                Violation("range.min", col.name, f"below {col.min:g}", as_mask(pc.less(values, col.min)))
            )
        if col.max is not None:
            found.append(
                Violation("range.max", col.name, f"above {col.max:g}", as_mask(pc.greater(values, col.max)))
            )
    else:
        bad = _outside(text, col.categories)
        found.append(Violation("category.allowed", col.name, f"not one of {sorted(col.categories)}", bad))
    if not col.nullable:
        missing = as_mask(pc.is_null(text))
        found.append(Violation("not_null", col.name, "missing value in a required column", missing))
    return found


def violations(chunk: pa.Table, contract: Contract, keys: KeyIndex) -> list[Violation]:
    """Every rule some row of ``chunk`` breaks; the rows passing all of them claim their keys in ``keys``."""
    key = pc.utf8_trim_whitespace(chunk[contract.key])
    missing_key = as_mask(pc.or_(pc.is_null(key), pc.equal(key, "")))
    found = [Violation("key.not_null", contract.key, "missing key", missing_key)]
    for col in contract.features:
        found.extend(_column_violations(chunk, col))
    target = chunk[contract.target]
    off_target = _outside(target, contract.classes) | as_mask(pc.is_null(target))
    message = f"target not one of {list(contract.classes)}"
    found.append(Violation("target.allowed", contract.target, message, off_target))
    # Only rows passing every other rule claim their key: a rejected row's key stays free for a later one.
    ok = ~np.logical_or.reduce([v.mask for v in found])
    duplicated = np.zeros(chunk.num_rows, dtype=bool)
    duplicated[np.flatnonzero(ok)] = keys.claim(pc.filter(key, pa.array(ok)))
    found.append(Violation("key.unique", contract.key, "the key appears earlier in the file", duplicated))
    return [v for v in found if v.mask.any()]


class KeyIndex:
    """The keys accepted so far in one file, as sorted 64-bit codes beside the keys themselves.

    A code is the key's integer when the key is a canonical integer (ids usually are, and ascending ids
    sort in linear time), else DuckDB's hash of the text. Every code match is confirmed on the text, so a
    collision never rejects a unique key; a key colliding with an earlier one is accepted but not indexed.
    """

    def __init__(self) -> None:
        self._db = duckdb.connect()
        self._codes = np.empty(0, dtype=np.uint64)
        self._slots = np.empty(0, dtype=np.int64)
        self._keys: list[pa.Array] = []
        self._stored = 0

    def _code(self, keys: pa.ChunkedArray) -> np.ndarray:
        try:
            numbers = pc.cast(keys, pa.int64())
            if pc.all(pc.equal(pc.cast(numbers, pa.string()), keys)).as_py():
                return numbers.to_numpy().view(np.uint64)
        except pa.ArrowInvalid:
            pass
        self._db.register("chunk_keys", pa.table({"k": keys}))
        codes = self._db.execute("SELECT hash(k) AS h FROM chunk_keys").fetchnumpy()["h"]
        self._db.unregister("chunk_keys")
        return np.asarray(codes, dtype=np.uint64)

    def claim(self, keys: pa.ChunkedArray) -> np.ndarray:
        """Mask of the keys seen before (earlier in the file or earlier in ``keys``); indexes the others."""
        n = len(keys)
        if n == 0:
            return np.zeros(0, dtype=bool)
        codes = self._code(keys)
        order = np.argsort(codes, kind="stable")
        ordered = codes[order]
        head = np.r_[True, ordered[1:] != ordered[:-1]]
        run_head = order[np.maximum.accumulate(np.where(head, np.arange(n), 0))]
        pos = np.minimum(np.searchsorted(self._codes, ordered), max(len(self._codes) - 1, 0))
        earlier = self._codes[pos] == ordered if len(self._codes) else np.zeros(n, dtype=bool)
        dup = ~head | earlier
        candidates = np.flatnonzero(dup)
        if candidates.size:
            mine = keys.take(pa.array(order[candidates]))
            reference = keys.take(pa.array(run_head[candidates]))
            if earlier.any():
                stored = pa.chunked_array(self._keys, pa.string()).take(
                    pa.array(self._slots[pos[candidates]])
                )
                reference = pc.if_else(pa.array(earlier[candidates]), stored, reference)
            dup[candidates[~as_mask(pc.equal(mine, reference))]] = False
        new = np.flatnonzero(head & ~earlier)
        at = np.searchsorted(self._codes, ordered[new])
        self._codes = np.insert(self._codes, at, ordered[new])
        self._slots = np.insert(self._slots, at, np.arange(len(new), dtype=np.int64) + self._stored)
        self._keys.append(keys.take(pa.array(order[new])).combine_chunks())
        self._stored += len(new)
        mask = np.zeros(n, dtype=bool)
        mask[order] = dup
        return mask
