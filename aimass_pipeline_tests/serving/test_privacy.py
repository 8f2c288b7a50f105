"""The served endpoint's PII guard: request fields get ingestion's transform, and the prediction log written
from them holds the pseudonym, never the plaintext."""

from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.core.pii import pseudonym
from aimass_pipeline.core.prediction_log import PredictionLogger
from aimass_pipeline.core.pseudonyms import pseudonym_key
from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.serving.privacy import pii_guard
from aimass_pipeline.serving.schema import record_model

CONTRACT = load_specs()["breast_cancer"].contract


def test_served_records_are_pseudonymised_before_the_log(tmp_path: Path) -> None:
    guard = pii_guard(CONTRACT, "one secret")
    alias = pseudonym("MRN-CANARY-1", pseudonym_key("one secret"))
    sent = {name: 0.05 for name in CONTRACT.feature_names} | {
        "patient_id": "MRN-CANARY-1",
        "date_of_birth": "1961-07-23",
    }
    record_model(CONTRACT).model_validate(sent)  # the request schema takes the PII fields
    [row] = guard([sent])
    assert row["patient_id"] == alias and row["date_of_birth"] == "1961-07"
    assert guard([{"mean_radius": 1.0}]) == [{"mean_radius": 1.0}]  # PII fields are optional
    log = PredictionLogger(str(tmp_path / "lake"), CONTRACT.use_case, start=False)
    log.log([row], [{"prediction_id": "p1", "probability": 0.5, "label": "benign"}], "m", "1", request_id="r")
    log.close()
    [part] = (tmp_path / "lake").rglob("*.parquet")
    assert b"MRN-CANARY-1" not in part.read_bytes() and b"1961-07-23" not in part.read_bytes()
    [inputs] = pd.read_parquet(part)["inputs"].tolist()
    assert alias in inputs and "MRN-CANARY-1" not in inputs and "1961-07-23" not in inputs


def test_a_bento_without_the_key_refuses_to_start() -> None:
    with pytest.raises(RuntimeError, match="AIMASS_PII_KEY"):
        pii_guard(CONTRACT, None)
