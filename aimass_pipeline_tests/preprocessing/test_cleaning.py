import pandas as pd
import pytest

from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.preprocessing.cleaning import clean_records
from aimass_pipeline_tests.conftest import CREDIT_RISK
from aimass_pipeline_tests.raw_batches import read_raw_batch


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@pytest.fixture
def small(credit_frame: pd.DataFrame) -> pd.DataFrame:
    return credit_frame.head(50).copy()


def test_clean_types_and_keeps_missing_values(small: pd.DataFrame) -> None:
    raw = read_raw_batch(_csv(small), "batch.csv", "b1", CREDIT_RISK)
    clean, report = clean_records(raw, CREDIT_RISK)
    assert report.rows_in == report.rows_out == 50
    assert clean["Age"].dtype == "float64"
    assert set(clean["Status"]) <= {"good", "bad"}
    assert report.missing_by_column["Income"] == int(small["Income"].isna().sum())
    assert clean["_source_file"].eq("batch.csv").all()


def test_exact_duplicates_dropped_and_newest_key_wins(small: pd.DataFrame) -> None:
    first = read_raw_batch(_csv(small), "a.csv", "b1", CREDIT_RISK)
    corrected = small.head(3).copy()
    corrected["Age"] = 33
    second = read_raw_batch(_csv(pd.concat([small.head(2), corrected])), "b.csv", "b2", CREDIT_RISK)
    clean, report = clean_records(pd.concat([first, second], ignore_index=True), CREDIT_RISK)
    assert report.exact_duplicates == 2
    assert report.superseded_keys == 3
    assert len(clean) == 50
    fixed = clean.set_index("application_id").loc[corrected["application_id"].astype(str)]
    assert (fixed["Age"] == 33).all() and (fixed["_batch_id"] == "b2").all()


def test_non_numeric_value_names_the_line(small: pd.DataFrame) -> None:
    small = small.astype({"Age": object})
    small.loc[4, "Age"] = "forty"
    raw = read_raw_batch(_csv(small), "bad.csv", "b1", CREDIT_RISK)
    with pytest.raises(DataContractError) as info:
        clean_records(raw, CREDIT_RISK)
    err = info.value
    assert (err.column, err.rule, err.rows, err.source) == ("Age", "type.numeric", [6], "bad.csv")
    assert "'forty'" in str(err)


def test_unknown_category_and_target_are_refused(small: pd.DataFrame) -> None:
    bad_home = small.copy()
    bad_home.loc[0, "Home"] = "castle"
    with pytest.raises(DataContractError, match="category.allowed"):
        clean_records(read_raw_batch(_csv(bad_home), "h.csv", "b", CREDIT_RISK), CREDIT_RISK)
    bad_target = small.copy()
    bad_target.loc[1, "Status"] = "maybe"
    with pytest.raises(DataContractError, match="target.allowed"):
        clean_records(read_raw_batch(_csv(bad_target), "t.csv", "b", CREDIT_RISK), CREDIT_RISK)


def test_required_column_null_is_refused(small: pd.DataFrame) -> None:
    small = small.astype({"Amount": object})
    small.loc[2, "Amount"] = None
    with pytest.raises(DataContractError, match=r"column 'Amount', row\(s\) 4: \[not_null\]"):
        clean_records(read_raw_batch(_csv(small), "n.csv", "b", CREDIT_RISK), CREDIT_RISK)
