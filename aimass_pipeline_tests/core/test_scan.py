"""The scanned-table type: the size decision, seeded samples, counts over files."""

from pathlib import Path

import numpy as np
import pandas as pd

from aimass_pipeline.core.scan import SCAN, ScanTable, by_size, frame_of, sample_metadata, value_counts


def _files(tmp_path: Path) -> tuple[ScanTable, pd.DataFrame]:
    frame = pd.DataFrame({"k": np.arange(10_000), "c": np.arange(10_000) % 3})
    paths = []
    for i, part in enumerate(np.array_split(frame, 3)):
        paths.append(str(tmp_path / f"p{i}.parquet"))
        part.to_parquet(paths[-1], index=False)
    return ScanTable.of_files(paths, owned_dir=None), frame


def test_a_sample_is_seeded_in_table_order_and_spans_files(tmp_path: Path) -> None:
    table, frame = _files(tmp_path)
    assert table.rows == 10_000
    first, again = table.sample(1000, seed=3), table.sample(1000, seed=3)
    assert first.equals(again) and len(first) == 1000
    assert first["k"].is_monotonic_increasing and first["k"].is_unique
    assert first["k"].max() > 6667 and first["k"].min() < 3333
    assert not table.sample(1000, seed=4).equals(first)
    assert frame_of(table, 20_000, seed=1).equals(frame)


def test_the_size_decision_and_its_metadata(tmp_path: Path) -> None:
    table, frame = _files(tmp_path)
    assert by_size(table, 9_999) is table
    assert sample_metadata(table, 500) == {"read_path": SCAN, "table_rows": 10_000, "rows_used": 500}
    small = by_size(table, 10_000)
    assert isinstance(small, pd.DataFrame) and small.equals(frame)
    assert value_counts(table, "c") == value_counts(frame, "c") == {0: 3334, 1: 3333, 2: 3333}
