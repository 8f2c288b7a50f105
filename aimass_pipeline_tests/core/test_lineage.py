"""Finding a prediction in the lake's log, and the code version stamped on every candidate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.lineage import (
    MlflowRuns,
    UnknownPredictionError,
    code_version,
    find_prediction,
    trace_prediction,
)
from aimass_pipeline.core.prediction_log import PredictionLogger

ROOT = Path(__file__).resolve().parents[2]


def _log(lake_url: str, use_case: str, ids: list[str], version: str) -> None:
    logger = PredictionLogger(lake_url, use_case, start=False)
    outputs = [{"prediction_id": pid, "probability": 0.25, "label": "good"} for pid in ids]
    logger.log([{"Age": i} for i in range(len(ids))], outputs, use_case, version, request_id="r")
    assert logger.flush() == len(ids)


def test_find_prediction_searches_every_use_case_and_file(tmp_path: Path) -> None:
    lake_url = str(tmp_path / "lake")
    _log(lake_url, "credit_risk", ["a1", "a2"], "1")
    _log(lake_url, "credit_risk", ["b1"], "2")
    _log(lake_url, "digits", ["c1", "c2", "c3"], "4")
    # A flush still being written: a dot-file that is not (yet) valid Parquet must not break the search.
    folder = next((tmp_path / "lake" / "predictions" / "digits").glob("date=*/hour=*"))
    (folder / ".partial.parquet.tmp").write_bytes(b"not parquet")

    use_case, row, log_file = find_prediction(Lake(lake_url), "c2")
    assert (use_case, row["model_version"], row["inputs"]) == ("digits", "4", '{"Age": 1}')
    assert Path(log_file.removeprefix("file://")).parent == folder

    use_case, row, _ = find_prediction(Lake(lake_url), "b1")
    assert (use_case, row["model_version"]) == ("credit_risk", "2")


def test_unknown_prediction_is_an_error_naming_the_lake(tmp_path: Path) -> None:
    lake_url = str(tmp_path / "lake")
    with pytest.raises(UnknownPredictionError, match="no prediction log at"):
        find_prediction(Lake(lake_url), "x")
    _log(lake_url, "credit_risk", ["a1"], "1")
    with pytest.raises(UnknownPredictionError, match=r"no prediction 'x' in the prediction log at .*lake"):
        find_prediction(Lake(lake_url), "x")


def test_code_version_is_this_checkouts_commit() -> None:
    code_version.cache_clear()  # the coordinator may have committed since another test computed it
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert code_version() == (f"{head}-dirty" if dirty else head)


def test_a_version_missing_from_the_registry_is_reported_not_guessed(tmp_path: Path) -> None:
    lake_url = str(tmp_path / "lake")
    _log(lake_url, "credit_risk", ["a1"], "7")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    lineage = trace_prediction(
        Lake(lake_url),
        MlflowRuns(MlflowClient(tracking_uri=tracking_uri)),
        "a1",
        tracking_uri=tracking_uri,
        mlflow_ui="http://mlflow",
        dagster_ui="http://dagster",
    )

    assert (lineage.model_name, lineage.model_version, lineage.inputs) == ("credit_risk", "7", {"Age": 0})
    assert lineage.mlflow_run_id is None and lineage.batches == []
    assert len(lineage.problems) == 1 and "has no version 7 of 'credit_risk'" in lineage.problems[0]


def test_the_cli_reads_the_embedded_store_as_mlflow_does(tmp_path: Path) -> None:
    """`aimass trace` reads a SQLite registry directly (no MLflow import); it must give MLflow's answers."""
    from aimass_pipeline.cli.stores import SqliteRuns
    from aimass_pipeline.core.lineage import MissingVersionError

    db = tmp_path / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.create_experiment("uc", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment, tags={"aimass.family": "logreg", "dagster.run_id": "d1"})
    client.create_registered_model("uc")
    client.create_model_version("uc", str(tmp_path / "model"), run_id=run.info.run_id)
    direct, by_mlflow = SqliteRuns(db), MlflowRuns(client)
    assert direct.version_run("uc", "1") == by_mlflow.version_run("uc", "1") == run.info.run_id
    assert direct.run(run.info.run_id) == by_mlflow.run(run.info.run_id)
    for source in (direct, by_mlflow):
        with pytest.raises(MissingVersionError):
            source.version_run("uc", "2")
