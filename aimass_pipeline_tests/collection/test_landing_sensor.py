import json
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from aimass_pipeline.collection.sensors import build_landing_sensor
from aimass_pipeline.jobs import build_lifecycle_job
from aimass_pipeline.lib.lake import Lake
from aimass_pipeline.lib.landing import list_landed_files
from aimass_pipeline.resources import LakeResource, LandingZoneResource
from aimass_pipeline.settings import Settings
from aimass_pipeline.use_case import UseCase
from aimass_pipeline_tests.conftest import CREDIT_SPEC

CREDIT = UseCase(CREDIT_SPEC)
landing_sensor = build_landing_sensor(CREDIT, build_lifecycle_job(CREDIT))


def _evaluate(settings: Settings, cursor: str | None, instance: DagsterInstance | None = None):
    context = build_sensor_context(
        cursor=cursor,
        instance=instance,
        resources={
            "landing": LandingZoneResource(root=str(settings.landing_root)),
            "lake": LakeResource(url=settings.lake_url),
        },
    )
    result = landing_sensor(context)
    return result, context.cursor


def _land(settings: Settings, name: str, frame: pd.DataFrame) -> Path:
    folder = settings.landing_dir("credit_risk")
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / name, index=False)
    return folder / name


def test_a_new_file_gives_one_run_and_the_same_file_none(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    result, cursor = _evaluate(aimass_home, None)
    assert isinstance(result, SkipReason)

    landed = _land(aimass_home, "batch_a.csv", credit_frame.head(100))
    result, cursor = _evaluate(aimass_home, cursor)
    assert isinstance(result, list) and len(result) == 1
    request: RunRequest = result[0]
    assert request.run_config["ops"]["credit_risk__raw_applications"]["config"]["files"] == ["batch_a.csv"]
    assert request.tags["aimass/batch_file"] == "batch_a.csv"
    assert request.run_key.startswith("credit_risk:") and landed.name in json.loads(cursor).values()

    result, cursor = _evaluate(aimass_home, cursor)
    assert isinstance(result, SkipReason)

    # The same bytes under another name are the same batch.
    _land(aimass_home, "batch_a_copy.csv", credit_frame.head(100))
    result, cursor = _evaluate(aimass_home, cursor)
    assert isinstance(result, SkipReason)

    _land(aimass_home, "batch_b.csv", credit_frame.iloc[100:200])
    result, _ = _evaluate(aimass_home, cursor)
    assert [r.tags["aimass/batch_file"] for r in result] == ["batch_b.csv"]


def test_a_restart_that_lost_its_cursor_does_not_take_a_stored_batch_again(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    _land(aimass_home, "stored.csv", credit_frame.head(50))
    [landed] = list_landed_files(aimass_home.landing_dir("credit_risk"))
    Lake(aimass_home.lake_url).store_raw_batch("credit_risk", landed)
    result, cursor = _evaluate(aimass_home, None)
    assert isinstance(result, SkipReason)
    assert json.loads(cursor) == {landed.sha256: "stored.csv"}


def test_run_key_is_stable_across_restarts(aimass_home: Settings, credit_frame: pd.DataFrame) -> None:
    _land(aimass_home, "pending.csv", credit_frame.head(50))
    first, _ = _evaluate(aimass_home, None)
    second, _ = _evaluate(aimass_home, None)
    # Dagster launches at most one run per run key, so a crash between launch and cursor save is harmless.
    assert first[0].run_key == second[0].run_key


def test_other_files_are_ignored_and_a_bad_csv_still_gets_its_run(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    folder = aimass_home.landing_dir("credit_risk")
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not data")
    (folder / ".upload.csv.partial").write_text("half")
    (folder / "sub.csv").mkdir()
    (folder / "broken.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (folder / "nested.jsonl").write_text('{"application": {"id": 1}}\n')
    result, _ = _evaluate(aimass_home, None)
    # The run, not the sensor, decides on quarantine: the tick stays cheap and never fails on content.
    assert sorted(r.tags["aimass/batch_file"] for r in result) == ["broken.csv", "nested.jsonl"]
