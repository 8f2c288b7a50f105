"""The model-ready table of a use case transformed in Python (``transformation: python`` in its spec)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.scan import ScanTable, copy_query, duckdb_session


def model_table(clean: pd.DataFrame, contract: Contract, label_column: str = "label") -> pd.DataFrame:
    """The model-ready table: key, typed features, integer label (the spec's class order) and lineage."""
    out = clean[[contract.key, *contract.feature_names]].copy()
    out[contract.key] = out[contract.key].astype(str)
    for name in contract.numeric_features:
        out[name] = out[name].astype("float64")
    out[label_column] = contract.encode_target(clean[contract.target])
    out["batch_id"] = clean["_batch_id"].astype(str)
    out["source_file"] = clean["_source_file"].astype(str)
    return out.sort_values(contract.key, kind="stable").reset_index(drop=True)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def model_table_scan(
    clean: ScanTable, contract: Contract, workdir: Path, label_column: str = "label"
) -> ScanTable:
    """``model_table`` in DuckDB over a scanned clean table: the same columns, types and key order."""
    classes = " ".join(f"when '{name}' then {i}" for i, name in enumerate(contract.classes))
    numeric = set(contract.numeric_features)
    features = ", ".join(
        f"cast({_q(c)} as double) as {_q(c)}" if c in numeric else _q(c) for c in contract.feature_names
    )
    query = (
        f"select cast({_q(contract.key)} as varchar) as {_q(contract.key)}, {features}, "
        f"cast(case cast({_q(contract.target)} as varchar) {classes} end as bigint) as {_q(label_column)}, "
        f"cast(_batch_id as varchar) as batch_id, cast(_source_file as varchar) as source_file "
        f"from {{source}} order by 1"
    )
    with duckdb_session(workdir) as con:
        source = clean.sql(con)
        unknown = con.execute(
            f"select distinct cast({_q(contract.target)} as varchar) from {source} "
            f"where cast({_q(contract.target)} as varchar) not in ({', '.join(repr(c) for c in contract.classes)})"
            f" or {_q(contract.target)} is null limit 5"
        ).fetchall()
        if unknown:
            raise ValueError(
                f"{contract.use_case}: target values {[u[0] or '<missing>' for u in unknown]} are not in "
                f"{contract.classes}"
            )
        out = copy_query(con, query.format(source=source), workdir / "table" / "table.parquet")
    return replace(out, owned_dir=str(workdir))
