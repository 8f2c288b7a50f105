"""The served endpoint's side of PII: the same transform as ingestion (core.pii) on the PII fields a request
may carry, before the model or the prediction log sees them. The model never reads these fields (they are
not features); the log keeps them only as pseudonyms, so a subject's predictions can be erased."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.pii import protect
from aimass_pipeline.core.pseudonyms import pseudonym_key

Rows = list[dict[str, Any]]


def _unchanged(rows: Rows) -> Rows:
    return rows


def pii_guard(contract: Contract, secret: str | None) -> Callable[[Rows], Rows]:
    """A function that replaces the PII fields of request records by their protected values."""
    if contract.pii is None:
        return _unchanged
    if not secret:
        raise RuntimeError(
            f"use case {contract.use_case} declares PII (data.pii) and the served bento has no AIMASS_PII_KEY: "
            "start it through `aimass serve` (which passes the key) or set the variable"
        )
    key, names = pseudonym_key(secret), contract.pii_columns

    def guard(rows: Rows) -> Rows:
        import pyarrow as pa

        sent = [n for n in names if any(row.get(n) is not None for row in rows)]
        if not sent:
            return rows
        table = pa.table({n: pa.array([row.get(n) for row in rows], pa.string()) for n in sent})
        protected, _ = protect(table, contract.pii, key)
        columns = {n: protected[n].to_pylist() for n in sent}
        return [{**row, **{n: columns[n][i] for n in sent}} for i, row in enumerate(rows)]

    return guard
