"""PredictionLogger on its own: buffering, flushing to a local lake, failures, the buffer cap."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aimass_pipeline.core.prediction_log import COLUMNS, PredictionLogger

USE_CASE = "credit_risk"


def _request(n: int, start: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records = [{"Age": 30 + i, "Home": "rent" if i % 2 else None} for i in range(start, start + n)]
    outputs = [
        {"prediction_id": f"p{i}", "probability": i / 100, "label": "bad" if i % 2 else "good"}
        for i in range(start, start + n)
    ]
    return records, outputs


def _files(lake: Path) -> list[Path]:
    return sorted((lake / "predictions" / USE_CASE).glob("date=*/hour=*/*.parquet"))


def _read(lake: Path) -> pd.DataFrame:
    files = _files(lake)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def test_every_row_carries_the_api_key_id_given(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), USE_CASE, start=False, api_key_id="sha256:0123456789ab")
    logger.log(*_request(2), model_name="m", model_version="7", request_id="r1")
    logger.flush()
    assert _read(tmp_path)["api_key_id"].tolist() == ["sha256:0123456789ab"] * 2


def test_flush_writes_one_row_per_prediction(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), USE_CASE, start=False)
    logger.log(*_request(3), model_name="m", model_version="7", request_id="r1")
    logger.log(*_request(2, start=3), model_name="m", model_version="7", request_id="r2")

    assert logger.flush() == 5

    files = _files(tmp_path)
    assert len(files) == 1
    date, hour = files[0].parent.parent.name, files[0].parent.name
    frame = pd.read_parquet(files[0])
    assert list(frame.columns) == [*COLUMNS, "api_key_id"]
    assert frame["api_key_id"].isna().all(), "no API key, no id"
    assert list(frame["prediction_id"]) == [f"p{i}" for i in range(5)]
    assert list(frame["request_id"]) == ["r1"] * 3 + ["r2"] * 2
    assert set(frame["model_version"]) == {"7"}
    assert str(frame["ts"].dt.tz) == "UTC"
    assert date == f"date={frame['ts'][0]:%Y-%m-%d}" and hour == f"hour={frame['ts'][0]:%H}"
    assert json.loads(frame["inputs"][1]) == {"Age": 31, "Home": "rent"}
    assert frame["probability"].tolist() == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    assert frame["probabilities"].isna().all()
    assert logger.buffered_rows == 0
    assert logger.flush() == 0, "a second flush has nothing left to write"
    assert not list(tmp_path.rglob(".*.tmp")), "the temporary file is renamed, not left behind"


def test_the_thread_flushes_every_interval(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), USE_CASE, flush_interval_s=0.1)
    try:
        logger.log(*_request(2), model_name="m", model_version="1", request_id="r")
        deadline = time.monotonic() + 5
        while not _files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_read(tmp_path)) == 2
    finally:
        logger.close()


def test_close_flushes_what_is_buffered(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), USE_CASE, flush_interval_s=3600)
    logger.log(*_request(4), model_name="m", model_version="1", request_id="r")
    assert not _files(tmp_path)

    logger.close()

    assert len(_read(tmp_path)) == 4
    assert not logger._thread.is_alive()
    logger.close()  # idempotent
    assert len(_files(tmp_path)) == 1


def test_a_failed_flush_logs_an_error_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    logger = PredictionLogger(str(tmp_path), USE_CASE, start=False)
    logger.log(*_request(3), model_name="m", model_version="1", request_id="r")
    real_open = logger.fs.open

    def lake_down(*args: Any, **kwargs: Any) -> Any:
        raise OSError("lake unreachable")

    monkeypatch.setattr(logger.fs, "open", lake_down)
    with caplog.at_level(logging.ERROR, logger="aimass_pipeline.core.prediction_log"):
        assert logger.flush() == 0

    assert logger.buffered_rows == 3
    assert logger.failed_flushes == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "could not write 3 rows" in errors[0].getMessage()
    assert errors[0].exc_info is not None, "the cause must be in the log"

    monkeypatch.setattr(logger.fs, "open", real_open)
    logger.log(*_request(1, start=3), model_name="m", model_version="1", request_id="r2")
    assert logger.flush() == 4
    # The kept rows come first: they are older.
    assert list(_read(tmp_path)["prediction_id"]) == ["p0", "p1", "p2", "p3"]


def test_a_write_that_succeeds_late_is_logged_as_a_slow_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aimass_pipeline.core import prediction_log

    monkeypatch.setattr(prediction_log, "SLOW_WRITE_S", 0.05)
    logger = PredictionLogger(str(tmp_path), USE_CASE, start=False)
    logger.log(*_request(2), model_name="m", model_version="1", request_id="r")
    real_open = logger.fs.open

    def slow_open(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)  # the client's retries riding out an outage
        return real_open(*args, **kwargs)

    monkeypatch.setattr(logger.fs, "open", slow_open)
    with caplog.at_level(logging.WARNING, logger="aimass_pipeline.core.prediction_log"):
        assert logger.flush() == 2
    slow = [r.getMessage() for r in caplog.records if "slow to answer" in r.getMessage()]
    assert len(slow) == 1 and "2 rows" in slow[0], caplog.text
    assert logger.failed_flushes == 0

    caplog.clear()
    monkeypatch.setattr(logger.fs, "open", real_open)
    logger.log(*_request(1, start=2), model_name="m", model_version="1", request_id="r2")
    with caplog.at_level(logging.WARNING, logger="aimass_pipeline.core.prediction_log"):
        assert logger.flush() == 1
    assert "slow to answer" not in caplog.text


def test_a_full_buffer_is_flushed_by_the_request_that_fills_it(tmp_path: Path) -> None:
    reported: list[int] = []
    logger = PredictionLogger(str(tmp_path), USE_CASE, max_buffer=5, on_dropped=reported.append, start=False)
    logger.log(*_request(3), model_name="m", model_version="1", request_id="r1")
    assert not _files(tmp_path)
    logger.log(*_request(3, start=3), model_name="m", model_version="1", request_id="r2")

    assert len(_files(tmp_path)) == 1 and logger.buffered_rows == 0, "6 > 5 rows: written by that log() call"
    logger.log(*_request(2, start=6), model_name="m", model_version="1", request_id="r3")
    assert logger.buffered_rows == 2
    logger.flush()
    assert logger.dropped_rows == 0 and reported == []
    assert list(_read(tmp_path)["prediction_id"]) == _ids(8, 0)


def test_a_failed_flush_respects_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logger = PredictionLogger(str(tmp_path), USE_CASE, max_buffer=4, start=False)
    monkeypatch.setattr(logger.fs, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("down")))
    for i in range(3):
        logger.log(*_request(2, start=2 * i), model_name="m", model_version="1", request_id=f"r{i}")
        logger.flush()

    assert logger.buffered_rows == 4
    assert logger.dropped_rows == 2
    assert logger.failed_flushes == 3


def test_mismatched_lengths_are_refused(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), USE_CASE, start=False)
    records, outputs = _request(2)
    with pytest.raises(ValueError, match="2 records but 1 outputs"):
        logger.log(records, outputs[:1], model_name="m", model_version="1", request_id="r")


def _ids(n: int, start: int) -> list[str]:
    return [f"p{i}" for i in range(start, start + n)]


def test_three_full_requests_in_one_interval_lose_nothing_while_the_lake_is_up(tmp_path: Path) -> None:
    """Fault 1: a full buffer is flushed (the caller waits: back-pressure), never trimmed, while the lake
    takes writes; every id can be traced with the lookup `aimass trace` uses."""
    from aimass_pipeline.core.lake import Lake
    from aimass_pipeline.core.lineage import find_prediction

    reported: list[int] = []
    # One interval longer than the test: the three requests all land inside it.
    logger = PredictionLogger(str(tmp_path), USE_CASE, flush_interval_s=3600, on_dropped=reported.append)
    try:
        for k in range(3):
            logger.log(
                *_request(10_000, start=k * 10_000), model_name="m", model_version="1", request_id=f"r{k}"
            )
    finally:
        logger.close()

    assert logger.dropped_rows == 0 and reported == [], f"dropped {logger.dropped_rows} rows with the lake up"
    written = _read(tmp_path)
    assert len(written) == 30_000 and set(written["prediction_id"]) == set(_ids(30_000, 0))
    lake = Lake(str(tmp_path))
    # The trace lookup itself on the first and last id of every request and a seeded sample of the rest.
    sample = [f"p{k * 10_000}" for k in range(3)] + [f"p{k * 10_000 + 9_999}" for k in range(3)]
    rng = __import__("random").Random(11)
    sample += [f"p{rng.randrange(30_000)}" for _ in range(10)]
    for pid in sample:
        use_case, row, _ = find_prediction(lake, pid)
        assert (use_case, row["prediction_id"]) == (USE_CASE, pid)


def test_rows_are_dropped_only_while_the_lake_is_down_and_each_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[int] = []
    logger = PredictionLogger(str(tmp_path), USE_CASE, max_buffer=10, on_dropped=reported.append, start=False)
    real_open = logger.fs.open
    monkeypatch.setattr(logger.fs, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("down")))
    logger.log(*_request(8), model_name="m", model_version="1", request_id="r0")
    logger.log(*_request(8, start=8), model_name="m", model_version="1", request_id="r1")

    assert logger.dropped_rows == 6 and sum(reported) == 6
    assert logger.buffered_rows == 10

    monkeypatch.setattr(logger.fs, "open", real_open)
    assert logger.flush() == 10  # the thread's next attempt
    logger.log(*_request(8, start=16), model_name="m", model_version="1", request_id="r2")
    logger.close()
    assert logger.dropped_rows == 6, "the lake is back: nothing more is dropped"
    assert list(
        _read(tmp_path).sort_values("prediction_id", key=lambda s: s.str[1:].astype(int))["prediction_id"]
    ) == _ids(18, 6)


def test_a_retried_flush_rewrites_the_same_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault 8: a write that reached the lake but reported an error (a timeout after the upload) is retried
    under the same name, so the part counts once."""
    logger = PredictionLogger(str(tmp_path), USE_CASE, start=False)
    logger.log(*_request(5), model_name="m", model_version="1", request_id="r0")
    real_mv = logger.fs.mv
    calls = {"n": 0}

    def written_but_reported_failed(*args: Any, **kwargs: Any) -> Any:
        real_mv(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("timed out after the object was stored")

    monkeypatch.setattr(logger.fs, "mv", written_but_reported_failed)
    assert logger.flush() == 0
    logger.log(*_request(2, start=5), model_name="m", model_version="1", request_id="r1")
    logger.close()

    frame = _read(tmp_path)
    assert frame["prediction_id"].value_counts().max() == 1, (
        f"{len(frame)} rows for 7 predictions in {len(_files(tmp_path))} files"
    )
    assert sorted(frame["prediction_id"]) == sorted(_ids(7, 0))
