"""The contract's row rules over one chunk of string columns: ``core.row_rules``, which preprocessing also
runs, plus ``key.unique`` within one file (a key repeated later in the file is refused; across files and
batches, preprocessing lets the newest batch win).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.row_rules import Violation, as_mask, check_rows
from aimass_pipeline.core.rules import KEY_UNIQUE

__all__ = ["KeyIndex", "Violation", "violations"]


def violations(chunk: pa.Table, contract: Contract, keys: KeyIndex) -> list[Violation]:
    """Every rule some row of ``chunk`` breaks; the rows passing all of them claim their keys in ``keys``."""
    checked = check_rows(chunk, contract)
    found = list(checked.violations)
    # Only rows passing every other rule claim their key: a rejected row's key stays free for a later one.
    ok = ~checked.bad
    duplicated = np.zeros(chunk.num_rows, dtype=bool)
    duplicated[np.flatnonzero(ok)] = keys.claim(pc.filter(checked.key, pa.array(ok)))
    if duplicated.any():
        found.append(Violation(KEY_UNIQUE, contract.key, "the key appears earlier in the file", duplicated))
    return found


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
