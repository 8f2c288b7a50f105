"""The scan path of preprocessing gives exactly the frame path's clean table and report."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimass_pipeline.collection.synthetic import credit_part
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.scan import ScanTable
from aimass_pipeline.preprocessing.cleaning import clean_records
from aimass_pipeline.preprocessing.scan_cleaning import clean_scan
from aimass_pipeline_tests.conftest import CREDIT_RISK


def _raw(rows: int, seed: int, batch: str) -> pd.DataFrame:
    frame = credit_part(np.random.default_rng(seed), 1, rows).to_pandas()
    return frame.assign(_batch_id=batch, _source_file=f"{batch}.csv", _source_row=np.arange(2, rows + 2))


def test_scan_cleaning_equals_frame_cleaning(tmp_path: Path) -> None:
    first, second = _raw(3000, 1, "b1"), _raw(3000, 2, "b2")  # the same keys: b2 corrects every one
    extra = pd.concat(
        [
            first.iloc[[5, 5]],  # an exact repeat within b1
            second.iloc[[7]],
            first.iloc[[7]].assign(_batch_id="b3"),  # key 8 goes back to b1's values: a repeat, not newer
            second.iloc[[9]].assign(Home=" OWNER "),  # normalised to the same content as b2's row
        ]
    )
    raw = pd.concat([first, second, extra], ignore_index=True)
    files = []
    for i, part in enumerate(np.array_split(raw, 4)):
        files.append(str(tmp_path / f"part{i}.parquet"))
        part.to_parquet(files[-1], index=False)
    expected, expected_report = clean_records(raw, CREDIT_RISK)
    table, report = clean_scan(ScanTable.of_files(files), CREDIT_RISK, tmp_path / "work")
    got = table.to_pandas()
    assert report == expected_report
    assert expected_report.exact_duplicates >= 3 and expected_report.superseded_keys == 3000
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        left, right = got[column], expected[column]
        if column in CREDIT_RISK.numeric_features:
            np.testing.assert_array_equal(left.to_numpy(float), right.to_numpy(float), err_msg=column)
        else:
            assert left.where(left.notna(), None).tolist() == right.where(right.notna(), None).tolist(), (
                column
            )


def test_scan_cleaning_names_the_file_and_rows_of_a_broken_rule(tmp_path: Path) -> None:
    raw = _raw(500, 3, "b1")
    raw.loc[[10, 20], "Age"] = "150"
    raw.to_parquet(tmp_path / "raw.parquet", index=False)
    with pytest.raises(DataContractError) as caught:
        clean_scan(ScanTable.of_files([str(tmp_path / "raw.parquet")]), CREDIT_RISK, tmp_path / "work")
    assert caught.value.rule == "range.max" and caught.value.rows == [12, 22]
