"""Erasure in the raw zone: each stored file holding the subject is rewritten without its rows (sealed again
under the raw-zone key) and its batch's manifest updated; the entity keys of the removed rows are returned
so every store downstream, which knows rows by entity key, can drop them too."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.lake import Lake, members
from aimass_pipeline.core.pseudonyms import open_stream, seal_stream


@dataclass
class RawErasure:
    entity_keys: set[str]
    rows: list[dict]  # the removed rows as landed (text), for stores that know rows only by content
    removed: list[dict]  # per rewritten file: location, rows, sha256 before and after


def _read(data: bytes, suffix: str) -> pa.Table:
    """A landed file as text columns, every value as written (nothing parsed, nothing nulled)."""
    if suffix == ".csv":
        types = dict.fromkeys(pv.open_csv(io.BytesIO(data)).schema.names, pa.string())
        return pv.read_csv(io.BytesIO(data), convert_options=pv.ConvertOptions(column_types=types))
    if suffix == ".jsonl":
        return pa.Table.from_pandas(
            pd.read_json(io.BytesIO(data), lines=True, dtype=False, convert_dates=False), preserve_index=False
        )
    return pq.read_table(io.BytesIO(data))


def _write(table: pa.Table, suffix: str) -> bytes:
    buffer = io.BytesIO()
    if suffix == ".csv":
        pv.write_csv(table, buffer)
    elif suffix == ".jsonl":
        return table.to_pandas().to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    else:
        pq.write_table(table, buffer)
    return buffer.getvalue()


def _plain(lake: Lake, parts: tuple[str, ...], key: bytes | None, sealed: bool) -> bytes:
    with lake.fs.open(lake.path(*parts), "rb") as handle:
        if not sealed:
            return handle.read()
        if key is None:
            raise ValueError(f"{lake.uri(*parts)} is sealed: the PII key is needed to erase from it")
        return b"".join(open_stream(handle, key, lake.uri(*parts)))


def erase_raw(lake: Lake, contract: Contract, subject: str, key: bytes | None, receipt_id: str) -> RawErasure:
    """Remove every landed row whose subject key is ``subject`` (plaintext: the raw zone holds what landed)."""
    assert contract.pii is not None
    column = contract.pii.subject_key
    found = RawErasure(set(), [], [])
    for manifest in lake.raw_batches(contract.use_case):
        folder = ("raw", contract.use_case, f"batch={manifest['batch_id']}")
        changed = False
        for member in members(manifest):
            parts = (*folder, member["source_file"])
            sealed = "sealed" in member
            plain = _plain(lake, parts, key, sealed)
            suffix = "." + member["source_file"].rsplit(".", 1)[-1].lower()
            table = _read(plain, suffix)
            if column not in table.column_names:
                continue
            values = pc.utf8_trim_whitespace(pc.cast(table[column], pa.string()))
            hit = pc.fill_null(pc.equal(values, subject), False)
            if not pc.any(hit).as_py():
                continue
            kept = _write(table.filter(pc.invert(hit)), suffix)
            frame = table.filter(hit).to_pandas()
            stored = b"".join(seal_stream(io.BytesIO(kept), key)) if sealed else kept
            lake.write_bytes(stored, *parts)
            found.entity_keys.update(frame[contract.key].astype(str).str.strip())
            found.rows.extend(frame.astype(str).to_dict("records"))
            after = hashlib.sha256(kept).hexdigest()
            found.removed.append(
                {
                    "store": "raw_zone",
                    "location": lake.uri(*parts),
                    "rows": len(frame),
                    "sha256_before": member["sha256"],
                    "sha256_after": after,
                }
            )
            member.update(sha256=after, size=len(kept), erased_by=[*member.get("erased_by", []), receipt_id])
            changed = True
        if changed:
            if len(members(manifest)) == 1 and "sha256" in manifest and "members" in manifest:
                manifest.update(sha256=manifest["members"][0]["sha256"], size=manifest["members"][0]["size"])
            lake.rewrite_manifest(contract.use_case, manifest)
    return found
