"""Erasure beyond the raw zone: lake tables (assets, rejects, prediction logs), labels, the warehouse (DuckDB,
and PostgreSQL under prod) and MLflow input examples. Each returns what it removed, where, with hashes."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.signing import MANIFEST as SIGNATURE
from aimass_pipeline.core.signing import sign_directory

# Stores erasure does not rewrite: the raw zone (privacy.raw_zone), the receipts and the audit trail.
_NOT_TABLES = ("raw", "privacy", "audit")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mask(table: pa.Table, contract: Contract, keys: set[str], pseudonym: str) -> pa.Array | None:
    """Rows of the subject: by entity key, subject pseudonym, or inside a JSON record; None: none such."""
    import pyarrow.compute as pc

    masks = []
    if contract.key in table.column_names and keys:
        masks.append(pc.is_in(pc.cast(table[contract.key], pa.string()), value_set=pa.array(sorted(keys))))
    if contract.pii is not None and contract.pii.subject_key in table.column_names:
        masks.append(pc.equal(pc.cast(table[contract.pii.subject_key], pa.string()), pseudonym))
    for text in ("inputs", "raw"):  # prediction-log records and rejected rows, as JSON
        if text in table.column_names:
            masks.append(pc.match_substring(pc.cast(table[text], pa.string()), pseudonym))
    if not masks:
        return None
    hit = masks[0]
    for more in masks[1:]:
        hit = pc.or_kleene(hit, more)
    return pc.fill_null(hit, False)


_SEARCHED = ("inputs", "raw")


def lake_tables(
    lake: Lake, contract: Contract, keys: set[str], pseudonym: str, rows: list[dict] | None = None
) -> tuple[list[dict], set[str]]:
    """Every Parquet table of the use case in the lake without the subject's rows; also returns the
    prediction ids removed, whose labels go too. Only the columns that can identify the subject are read
    until a file is known to hold it."""
    import pyarrow.compute as pc

    removed, predictions = [], set()
    subject = contract.pii.subject_key if contract.pii is not None else None
    for path in sorted(lake.fs.find(lake.root)):
        relative = path[len(lake.root) + 1 :].split("/")
        if relative[0] in _NOT_TABLES or contract.use_case not in relative or not path.endswith(".parquet"):
            continue
        before = lake.fs.cat_file(path)
        names = pq.read_schema(io.BytesIO(before)).names
        wanted = [n for n in (contract.key, subject, *_SEARCHED) if n in names]
        if wanted:
            hit = _mask(pq.read_table(io.BytesIO(before), columns=wanted), contract, keys, pseudonym)
        elif rows and set(contract.feature_names) <= set(names):
            # Keyless samples of training features (monitoring's drift reference): the subject's rows are
            # known by their values.
            features = pq.read_table(io.BytesIO(before), columns=contract.feature_names).to_pandas()
            hit = pa.array(_matches(features, rows).to_numpy())
        else:
            continue
        if hit is None or not pc.any(hit).as_py():
            continue
        table = pq.read_table(io.BytesIO(before))
        if "prediction_id" in names:
            predictions.update(pc.filter(table["prediction_id"], hit).to_pylist())
        buffer = io.BytesIO()
        pq.write_table(table.filter(pc.invert(hit)), buffer)
        lake.write_bytes(buffer.getvalue(), *relative)
        count = int(pc.sum(pc.cast(hit, pa.int64())).as_py())
        removed.append(_entry("lake", lake.fs.unstrip_protocol(path), count, before, buffer.getvalue()))
    return removed, predictions


def _entry(store: str, where: str, rows: int, before: bytes, after: bytes) -> dict:
    return {
        "store": store,
        "location": where,
        "rows": rows,
        "sha256_before": _sha(before),
        "sha256_after": _sha(after),
    }


def labels(root: Path | str, use_case: str, prediction_ids: set[str]) -> list[dict]:
    """Label files (``prediction_id`` + outcome) without the labels of the subject's predictions."""
    if not prediction_ids:
        return []
    fs, folder = fsspec.core.url_to_fs(f"{root}/{use_case}")
    if not fs.exists(folder):
        return []
    removed = []
    for path in sorted(fs.find(folder)):
        suffix = Path(path).suffix
        if suffix not in (".csv", ".parquet"):
            continue
        before = fs.cat_file(path)
        frame = (
            pd.read_csv(io.BytesIO(before), dtype=str)
            if suffix == ".csv"
            else pd.read_parquet(io.BytesIO(before))
        )
        if "prediction_id" not in frame.columns:
            continue
        hit = frame["prediction_id"].astype(str).isin(prediction_ids)
        if not hit.any():
            continue
        buffer = io.BytesIO()
        frame.loc[~hit].to_csv(buffer, index=False) if suffix == ".csv" else frame.loc[~hit].to_parquet(
            buffer, index=False
        )
        fs.pipe_file(path, buffer.getvalue())
        removed.append(_entry("labels", fs.unstrip_protocol(path), int(hit.sum()), before, buffer.getvalue()))
    return removed


def warehouse(
    connection, dialect: str, contract: Contract, keys: set[str], pseudonym: str, schemas: Iterable[str]
) -> list[dict]:
    """DELETE the subject's rows from every table of the use case's schemas holding its entity key or
    subject column (a DB-API connection: DuckDB or PostgreSQL). Views follow their tables."""
    mark = "?" if dialect == "duckdb" else "%s"
    cursor = connection.cursor()
    removed = []
    wanted = list(schemas)
    cursor.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        f"WHERE t.table_type = 'BASE TABLE' AND c.table_schema IN ({', '.join([mark] * len(wanted))})",
        wanted,
    )
    columns: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in cursor.fetchall():
        columns.setdefault((schema, table), set()).add(column)
    subject = contract.pii.subject_key if contract.pii is not None else None
    for (schema, table), names in sorted(columns.items()):
        clauses, params = [], []
        if contract.key in names and keys:
            clauses.append(f'CAST("{contract.key}" AS VARCHAR) IN ({", ".join([mark] * len(keys))})')
            params.extend(sorted(keys))
        if subject in names:
            clauses.append(f'"{subject}" = {mark}')
            params.append(pseudonym)
        if not clauses:
            continue
        cursor.execute(f'DELETE FROM "{schema}"."{table}" WHERE {" OR ".join(clauses)}', params)
        count = cursor.rowcount if cursor.rowcount not in (None, -1) else None
        if dialect == "duckdb":
            count = int(cursor.fetchone()[0])
        if count:
            removed.append({"store": f"warehouse:{dialect}", "location": f"{schema}.{table}", "rows": count})
    connection.commit()
    return removed


def _matches(example: pd.DataFrame, rows: list[dict]) -> pd.Series:
    hit = pd.Series(False, index=example.index)
    for row in rows:
        same = pd.Series(True, index=example.index)
        for column in example.columns:
            if column not in row:
                continue
            try:
                same &= (pd.to_numeric(example[column]) - float(row[column])).abs() < 1e-9
            except (TypeError, ValueError):
                same &= example[column].astype(str) == str(row[column])
        hit |= same
    return hit


def mlflow_examples(artifacts: str, rows: list[dict], signing_key: str) -> list[dict]:
    """Input examples logged with models (``input_example.json``, split orient) without the subject's rows.
    A signed model folder (core.signing) is signed again over its new files: the platform's own change."""
    fs, root = fsspec.core.url_to_fs(artifacts)
    removed, resign = [], set()
    if not rows or not fs.exists(root):
        return removed
    for path in sorted(fs.find(root)):
        if not path.endswith(("input_example.json", "serving_input_example.json")):
            continue
        before = fs.cat_file(path)
        body = json.loads(before)
        split = body.get("dataframe_split", body)
        if not isinstance(split, dict) or "columns" not in split or "data" not in split:
            continue
        example = pd.DataFrame(split["data"], columns=split["columns"])
        hit = _matches(example, rows)
        if not hit.any():
            continue
        split["data"] = [r for r, h in zip(split["data"], hit, strict=True) if not h]
        after = json.dumps(body).encode()
        fs.pipe_file(path, after)
        removed.append(_entry("mlflow", fs.unstrip_protocol(path), int(hit.sum()), before, after))
        resign.add(path.rsplit("/", 1)[0])
    for folder in sorted(resign):
        if fs.exists(f"{folder}/{SIGNATURE}"):
            if not isinstance(fs, LocalFileSystem):
                raise NotImplementedError(f"re-signing a model in a remote artifact store ({folder})")
            sign_directory(folder, signing_key)
    return removed
