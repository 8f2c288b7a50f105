"""A batch's landed files validated into text Parquet, and the batch as one table: a frame, or a scan of its
files when it is over the spec's ``training.max_rows`` rows (``core.scan``)."""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aimass_pipeline.collection.ingestion.stream import IngestReport, ingest_file
from aimass_pipeline.collection.protection import UNPROTECTED, Protection, opened_copy
from aimass_pipeline.core.contracts import META_COLUMNS, Contract
from aimass_pipeline.core.lake import Lake, members
from aimass_pipeline.core.scan import ScanTable, by_size


@dataclass
class ValidatedFile:
    accepted: str  # the accepted rows as Parquet, in the batch's scratch folder
    rejects: pd.DataFrame
    report: IngestReport


def validated_batch(
    source: str,
    batch_id: str,
    contract: Contract,
    workdir: Path,
    storage_options: dict | None = None,
    guard: Protection = UNPROTECTED,
) -> ValidatedFile:
    """The one place a landed (or stored) file is validated: streamed against the contract, the rows
    breaking a row rule set aside with their reasons, the rest written as text Parquet in ``workdir``."""
    index = len(list(workdir.glob("accepted-*.parquet")))
    accepted, rejects = workdir / f"accepted-{index}.parquet", workdir / f"rejects-{index}.parquet"
    report = ingest_file(
        source,
        contract,
        batch_id=batch_id,
        out_path=str(accepted),
        rejects_path=str(rejects),
        storage_options=storage_options,
        pii_key=guard.pii_key,
        erased=guard.erased,
    )
    return ValidatedFile(str(accepted), pd.read_parquet(rejects), report)


def batch_table(
    files: list[str], contract: Contract, workdir: Path, max_rows: int
) -> pd.DataFrame | ScanTable:
    """The batch's accepted rows: a frame, or a scan of its files when it is over ``max_rows`` rows."""
    if not files:
        shutil.rmtree(workdir, ignore_errors=True)
        return pd.DataFrame(columns=[*contract.raw_columns, *META_COLUMNS], dtype=str)
    return by_size(ScanTable.of_files(files, owned_dir=str(workdir)), max_rows)


def stored_table(
    store: Lake,
    use_case: str,
    manifest: dict,
    contract: Contract,
    max_rows: int,
    guard: Protection = UNPROTECTED,
) -> pd.DataFrame | ScanTable:
    # The same validation as on landing, so a re-run yields the same rows (rejected ones stay out).
    folder = ("raw", use_case, f"batch={manifest['batch_id']}")
    workdir = Path(tempfile.mkdtemp(prefix="aimass-ingest-"))
    files = []
    for m in members(manifest):
        parts = (*folder, m["source_file"])
        sealed = "sealed" in m
        where = str(opened_copy(store, parts, guard.raw_key, workdir)) if sealed else store.uri(*parts)
        checked = Protection(guard.pii_key, guard.raw_key)  # erased rows left the raw zone already
        options = None if sealed else store.storage_options
        files.append(
            validated_batch(where, manifest["batch_id"], contract, workdir, options, checked).accepted
        )
    return batch_table(files, contract, workdir, max_rows)
