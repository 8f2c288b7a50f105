"""One landed file into the lake, streamed: checked against its contract chunk by chunk with Arrow compute.

Rows breaking a row rule go to a rejects table with the reason; the file fails as a whole (DataContractError,
the caller quarantines it) when it cannot be read, has the wrong columns, or its rejected share is above the
contract's ``max_reject_share``. Accepted rows are text columns plus ``core.contracts.META_COLUMNS``, which clean_records reads.
"""

from __future__ import annotations

import json
import posixpath
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from aimass_pipeline.collection.ingestion.readers import read_chunks
from aimass_pipeline.collection.ingestion.rules import KeyIndex, Violation, violations
from aimass_pipeline.collection.ingestion.source import open_source, resolve, row_bound
from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.pii import protect
from aimass_pipeline.core.text_contract import prepare_text

_SAMPLES = 5
REJECT_SCHEMA = pa.schema(
    [
        ("column", pa.string()),
        ("rule", pa.string()),
        ("message", pa.string()),
        ("value", pa.string()),
        ("raw", pa.string()),
        ("_batch_id", pa.string()),
        ("_source_file", pa.string()),
        ("_source_row", pa.int64()),
    ]
)


@dataclass
class IngestReport:
    source_file: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rejects_by_rule: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    seconds: float = 0.0
    refused: list = field(default_factory=list)  # images of an archive refused alone (RefusedMember)
    images: list = field(default_factory=list)  # accepted images: key, archive, member, sha256

    @property
    def reject_share(self) -> float:
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0

    def as_metadata(self) -> dict:
        return {
            "source_file": self.source_file,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "reject_share": round(self.reject_share, 6),
            "rejects_by_rule": dict(self.rejects_by_rule),
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_read / self.seconds) if self.seconds else 0,
            **({"images_refused": [r.as_metadata() for r in self.refused]} if self.refused else {}),
        }


class _AtomicParquet:
    """A Parquet file written under a hidden temporary name and renamed into place only on commit."""

    def __init__(self, fs: pafs.FileSystem, path: str, schema: pa.Schema, dictionary: list[str]) -> None:
        parent, name = posixpath.split(path)
        if parent:
            fs.create_dir(parent, recursive=True)
        self.fs, self.path = fs, path
        self.partial = posixpath.join(parent, f".{name}.{uuid.uuid4().hex[:8]}.partial")
        # Dictionaries only where values repeat, statistics only on the row number: string min/max
        # statistics and failed dictionaries of unique values cost about half of the write.
        self.writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.partial,
            schema,
            filesystem=fs,
            use_dictionary=dictionary,
            write_statistics=["_source_row"],
        )
        self._thread = ThreadPoolExecutor(max_workers=1)
        self._pending: Future | None = None

    def write(self, table: pa.Table) -> None:
        # Encoding releases the GIL: the next chunk is read and checked while this one is written. One
        # write in flight keeps memory at two chunks.
        self._wait()
        if table.num_rows:
            self._pending = self._thread.submit(self.writer.write_table, table)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def commit(self) -> None:
        self._wait()
        self._thread.shutdown()
        self.writer.close()
        self.writer = None
        self.fs.move(self.partial, self.path)

    def abort(self) -> None:
        self._thread.shutdown(cancel_futures=True)
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.fs.get_file_info(self.partial).type != pafs.FileType.NotFound:
            self.fs.delete_file(self.partial)


class _Tally:
    """Rejected rows so far: counts by rule and column, and the first few reasons for an error message."""

    def __init__(self) -> None:
        self.by_rule: Counter[str] = Counter()
        self.by_column: Counter[str] = Counter()
        self.samples: list[dict] = []

    def add(self, chunk: pa.Table, found: list[Violation]) -> None:
        for v in found:
            self.by_column[v.column] += int(v.mask.sum())
            for i in np.flatnonzero(v.mask)[:_SAMPLES].tolist():
                row = chunk["_source_row"][i].as_py()
                value = chunk[v.column][i].as_py()
                if isinstance(value, str) and len(value) > 120:  # a reason names a long text, never holds it
                    value = f"{value[:80]}... ({len(value)} characters)"
                self.samples.append({"row": row, "column": v.column, "rule": v.rule, "value": value})
        for rule in {v.rule for v in found}:
            self.by_rule[rule] += int(np.logical_or.reduce([v.mask for v in found if v.rule == rule]).sum())
        self.samples = sorted(self.samples, key=lambda s: s["row"])[:_SAMPLES]

    def error(self, report: IngestReport, contract: Contract, done: bool) -> DataContractError:
        reasons = "; ".join(
            f"row {s['row']} {s['column']} [{s['rule']}] {s['value']!r}" for s in self.samples
        )
        scope = "rows" if done else "rows read so far (more than the whole file may reject)"
        return DataContractError(
            f"{report.rows_rejected} of {report.rows_read} {scope} break row rules, above the contract's "
            f"max_reject_share {contract.max_reject_share:.2%}; first reasons: {reasons}",
            source=report.source_file,
            rule="rows.reject_share",
            column=self.by_column.most_common(1)[0][0],
            rows=sorted({s["row"] for s in self.samples}),
        )


def _rejects(chunk: pa.Table, found: list[Violation], bad: np.ndarray, raw_columns: list[str]) -> pa.Table:
    """One row per rule a row breaks, with the row's raw values as JSON."""
    rows = np.flatnonzero(bad)
    raw = pa.array(
        [json.dumps(r, ensure_ascii=False) for r in chunk.select(raw_columns).take(rows).to_pylist()]
    )
    parts = []
    for v in found:
        idx = np.flatnonzero(v.mask)
        n = len(idx)
        columns = {
            "_source_row": chunk["_source_row"].take(idx),
            "column": pa.repeat(v.column, n),
            "rule": pa.repeat(v.rule, n),
            "message": pa.repeat(v.message, n),
            "value": chunk[v.column].take(idx),
            "raw": raw.take(np.searchsorted(rows, idx)),
        }
        parts.append(pa.table(columns))
    return pa.concat_tables(parts).sort_by("_source_row")


def _with_meta(table: pa.Table, batch_id: str, source_file: str) -> pa.Table:
    n = table.num_rows
    rows = table["_source_row"]
    table = table.drop_columns(["_source_row"]).append_column("_batch_id", pa.repeat(batch_id, n))
    return table.append_column("_source_file", pa.repeat(source_file, n)).append_column("_source_row", rows)


def _refuse_erased(name: str, chunk: pa.Table, contract: Contract, erased: dict[str, str] | None) -> None:
    if not erased or contract.pii is None:
        return
    subjects = chunk[contract.pii.subject_key]
    hits = np.flatnonzero(pc.is_in(subjects, value_set=pa.array(list(erased), pa.string())).to_numpy(False))
    if len(hits):
        receipt = erased[subjects[int(hits[0])].as_py()]
        rows = chunk["_source_row"].take(hits[:_SAMPLES]).to_pylist()
        # The receipt, not the subject, is named: logs must not carry the erased subject again.
        raise DataContractError(
            f"{len(hits)} row(s) carry a subject erased by receipt {receipt}: an erased subject is not "
            "imported again",
            source=name,
            rule="privacy.erased_subject",
            column=contract.pii.subject_key,
            rows=rows,
        )


def ingest_file(
    path: str,
    contract: Contract,
    *,
    batch_id: str,
    out_path: str,
    rejects_path: str,
    filesystem: object = None,
    storage_options: dict | None = None,
    chunk_rows: int = 500_000,
    pii_key: bytes | None = None,
    erased: dict[str, str] | None = None,
) -> IngestReport:
    """Stream ``path`` (CSV, JSON Lines or Parquet; local, an fsspec URL, or inside ``filesystem``) into
    ``out_path`` (accepted rows) and ``rejects_path`` (one row per broken rule), both Parquet.

    PII columns (``contract.pii``) are transformed with ``pii_key`` before any check, so no plaintext
    reaches either output, a reject reason or an error; a subject in ``erased`` (pseudonym -> receipt id)
    fails the whole file. Raises DataContractError for a fault of the whole file; nothing is then left at
    either path.
    """
    started = time.perf_counter()
    source = open_source(*resolve(path, filesystem, storage_options))
    report = IngestReport(source_file=source.name, bytes_read=source.size)
    # An upper bound of the file's rows lets a file with too many rejects fail without reading it all.
    limit = contract.max_reject_share * row_bound(source, contract)
    meta = [("_batch_id", pa.string()), ("_source_file", pa.string()), ("_source_row", pa.int64())]
    out_schema = pa.schema([*((c, pa.string()) for c in contract.raw_columns), *meta])
    repeating = [contract.target, *contract.categorical_features, "_batch_id", "_source_file"]
    writers = []
    try:
        accepted = _AtomicParquet(*resolve(out_path, filesystem, storage_options), out_schema, repeating)
        writers.append(accepted)
        rejects = _AtomicParquet(
            *resolve(rejects_path, filesystem, storage_options),
            REJECT_SCHEMA,
            ["column", "rule", *repeating[-2:]],
        )
        writers.append(rejects)
        keys, tally = KeyIndex(), _Tally()
        for chunk in read_chunks(source, contract, chunk_rows, report.refused, report.images):
            chunk, unreadable = protect(chunk, contract.pii, pii_key)
            _refuse_erased(source.name, chunk, contract, erased)
            found = violations(chunk, contract, keys) + [
                Violation(
                    "pii.generalise", column, "not a value its rule can generalise", mask.to_numpy(False)
                )
                for column, mask in unreadable.items()
            ]
            bad = np.logical_or.reduce([v.mask for v in found]) if found else np.zeros(chunk.num_rows, bool)
            report.rows_read += chunk.num_rows
            report.rows_rejected += int(bad.sum())
            chunk = prepare_text(chunk, contract)  # NFC, PII scrubbed: nothing stored holds a raw contact
            tally.add(chunk, found)
            if report.rows_rejected > limit:
                raise tally.error(report, contract, done=False)
            good = chunk.filter(pa.array(~bad))
            accepted.write(_with_meta(good, batch_id, source.name))
            if found:
                found_rows = _rejects(chunk, found, bad, contract.raw_columns)
                rejects.write(_with_meta(found_rows, batch_id, source.name))
        if report.rows_read == 0:
            raise DataContractError("a header but no rows", source=source.name, rule="file.header_only")
        if report.reject_share > contract.max_reject_share:
            raise tally.error(report, contract, done=True)
        rejects.commit()
        accepted.commit()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    report.rows_accepted = report.rows_read - report.rows_rejected
    report.rejects_by_rule = dict(tally.by_rule)
    report.seconds = time.perf_counter() - started
    return report
