"""A landed CSV as the raw table collection hands on (text columns plus batch, file and line), built whole in
memory: a test oracle for the streamed ingestion and a quick way to feed the later stages in tests."""

from __future__ import annotations

import io

import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.errors import DataContractError


def read_raw_batch(data: bytes, source_file: str, batch_id: str, contract: Contract) -> pd.DataFrame:
    """Parse one landed CSV as text, checking its header against the contract."""
    if not data.strip():
        raise DataContractError("the file is empty", source=source_file, rule="file.empty")
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=["", "NA"])
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataContractError(f"not a readable CSV: {exc}", source=source_file, rule="file.parse") from exc
    missing = [c for c in contract.raw_columns if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"missing columns {missing}", source=source_file, rule="columns.missing", column=missing[0]
        )
    unexpected = [c for c in frame.columns if c not in contract.raw_columns]
    if unexpected and not contract.extra_columns_allowed:
        raise DataContractError(
            f"unexpected columns {unexpected}",
            source=source_file,
            rule="columns.unexpected",
            column=unexpected[0],
        )
    frame = frame[contract.raw_columns].copy()
    frame["_batch_id"] = batch_id
    frame["_source_file"] = source_file
    # Line numbers as an editor shows them: the header is line 1.
    frame["_source_row"] = range(2, len(frame) + 2)
    return frame
