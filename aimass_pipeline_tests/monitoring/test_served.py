"""read_predictions: the prediction log over a time window, reading only that window's hour folders."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import pandas as pd

from aimass_pipeline.core.prediction_log import COLUMNS, PredictionLogger
from aimass_pipeline.monitoring.served import read_predictions


def _log(lake: Path, n: int) -> None:
    logger = PredictionLogger(str(lake), "uc", start=False)
    records = [{"x": i} for i in range(n)]
    outputs = [{"prediction_id": f"p{i}", "probability": 0.5, "label": "a"} for i in range(n)]
    logger.log(records, outputs, model_name="uc", model_version="1", request_id="r")
    logger.close()


def test_window_keeps_recent_rows_and_skips_old_hours(tmp_path: Path) -> None:
    _log(tmp_path, 3)
    [recent] = list((tmp_path / "predictions" / "uc").glob("date=*/hour=*/*.parquet"))
    old_ts = datetime.now(UTC) - timedelta(hours=30)
    old = pd.read_parquet(recent).assign(ts=pd.Timestamp(old_ts), prediction_id=["o1", "o2", "o3"])
    folder = tmp_path / "predictions" / "uc" / f"date={old_ts:%Y-%m-%d}" / f"hour={old_ts:%H}"
    folder.mkdir(parents=True)
    old.to_parquet(folder / "old.parquet")
    (recent.parent / ".half-written.parquet").write_bytes(b"not parquet")
    fs = fsspec.filesystem("file")
    now = datetime.now(UTC) + timedelta(seconds=1)

    day = read_predictions(fs, str(tmp_path), "uc", now - timedelta(hours=24), now)
    two_days = read_predictions(fs, str(tmp_path), "uc", now - timedelta(hours=48), now)
    empty = read_predictions(fs, str(tmp_path), "other", now - timedelta(hours=24), now)

    assert day["prediction_id"].tolist() == ["p0", "p1", "p2"]
    assert sorted(two_days["prediction_id"]) == ["o1", "o2", "o3", "p0", "p1", "p2"]
    assert empty.empty and list(empty.columns) == list(COLUMNS) and str(empty["ts"].dt.tz) == "UTC"


def test_labels_find_their_predictions_in_the_whole_log_once_each(tmp_path: Path) -> None:
    """Fault 8: the join scans every part (a prediction from 90 days ago included) and a part written
    twice counts once, in the window read and in the id scan."""
    from aimass_pipeline.monitoring.served import predictions_by_id

    _log(tmp_path, 3)
    [recent] = list((tmp_path / "predictions" / "uc").glob("date=*/hour=*/*.parquet"))
    (recent.parent / f"again-{recent.name}").write_bytes(recent.read_bytes())  # a re-flushed part
    old_ts = datetime.now(UTC) - timedelta(days=90)
    old = pd.read_parquet(recent).assign(ts=pd.Timestamp(old_ts), prediction_id=["o1", "o2", "o3"])
    folder = tmp_path / "predictions" / "uc" / f"date={old_ts:%Y-%m-%d}" / f"hour={old_ts:%H}"
    folder.mkdir(parents=True)
    old.to_parquet(folder / "old.parquet")
    fs = fsspec.filesystem("file")
    now = datetime.now(UTC) + timedelta(seconds=1)

    found = predictions_by_id(fs, str(tmp_path), "uc", ["o2", "p1", "p2", "never-served"])
    window = read_predictions(fs, str(tmp_path), "uc", now - timedelta(hours=1), now)

    assert sorted(found["prediction_id"]) == ["o2", "p1", "p2"]
    assert window["prediction_id"].tolist() == ["p0", "p1", "p2"]
    assert predictions_by_id(fs, str(tmp_path), "nothing", ["p1"]).empty
