import hashlib
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context

from aimass_pipeline.collection.landing import LandingCursor, list_landed_files
from aimass_pipeline.collection.sensors import build_landing_sensor, landing_tick
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.orchestration.jobs import build_lifecycle_job
from aimass_pipeline.orchestration.resources import LakeResource, LandingZoneResource
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC

CREDIT = UseCase(CREDIT_SPEC)
JOB = build_lifecycle_job(CREDIT)
# Settle window 0: a file is complete once written; the growing-file test uses a long window instead.
eager_sensor = build_landing_sensor(CREDIT, JOB, settle_s=0)
patient_sensor = build_landing_sensor(CREDIT, JOB, settle_s=3600)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def _tick(settings: Settings, cursor: str | None, instance: DagsterInstance, sensor=eager_sensor):
    context = build_sensor_context(
        cursor=cursor,
        instance=instance,
        resources={
            "landing": LandingZoneResource(root=str(settings.landing_root)),
            "lake": LakeResource(url=settings.lake_url),
        },
    )
    result = sensor(context)
    assert isinstance(result, SensorResult)
    return result, result.cursor


def _land(settings: Settings, name: str, data: bytes | pd.DataFrame) -> Path:
    folder = settings.landing_dir("credit_risk")
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, pd.DataFrame):
        data = data.to_csv(index=False).encode()
    (folder / name).write_bytes(data)
    return folder / name


def test_a_new_file_adds_a_partition_and_one_run_and_the_same_bytes_none(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    result, cursor = _tick(aimass_home, None, instance)
    assert not result.run_requests and result.skip_reason

    landed = _land(aimass_home, "batch_a.csv", credit_frame.head(100))
    result, cursor = _tick(aimass_home, cursor, instance)
    [request] = result.run_requests
    batch_id = hashlib.sha256(landed.read_bytes()).hexdigest()[:16]
    assert request.partition_key == batch_id and request.run_key == f"credit_risk:{batch_id}"
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == "credit_risk_batches" and list(add.partition_keys) == [batch_id]
    members = request.run_config["ops"]["credit_risk__raw_applications_batch"]["config"]["members"]
    assert [m["name"] for m in members] == ["batch_a.csv"]
    assert request.tags["aimass/batch_files"] == "batch_a.csv"

    result, cursor = _tick(aimass_home, cursor, instance)
    assert not result.run_requests

    # The same bytes under another name are the same content: nothing to do.
    _land(aimass_home, "batch_a_copy.csv", credit_frame.head(100))
    result, cursor = _tick(aimass_home, cursor, instance)
    assert not result.run_requests

    _land(aimass_home, "batch_b.csv", credit_frame.iloc[100:200])
    result, _ = _tick(aimass_home, cursor, instance)
    assert [r.tags["aimass/batch_files"] for r in result.run_requests] == ["batch_b.csv"]


def test_a_lost_cursor_does_not_take_a_stored_batch_again_and_run_keys_are_stable(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    _land(aimass_home, "stored.csv", credit_frame.head(50))
    [landed] = list_landed_files(aimass_home.landing_dir("credit_risk"))
    Lake(aimass_home.lake_url).store_raw_batch("credit_risk", landed.batch_id, [landed])
    _land(aimass_home, "pending.csv", credit_frame.iloc[50:80])
    first, _ = _tick(aimass_home, None, instance)
    second, _ = _tick(aimass_home, None, instance)
    assert [r.tags["aimass/batch_files"] for r in first.run_requests] == ["pending.csv"]
    # A restart before the cursor was saved asks again under the same key, which Dagster runs once.
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]


def test_a_growing_file_is_taken_only_once_it_has_settled(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    text = credit_frame.head(60).to_csv(index=False)
    path = _land(aimass_home, "growing.csv", text[:2000].encode())
    result, cursor = _tick(aimass_home, None, instance, patient_sensor)
    assert not result.run_requests and LandingCursor.from_json(cursor).files["growing.csv"][2] is None

    with path.open("a") as handle:
        handle.write(text[2000:])
    result, cursor = _tick(aimass_home, cursor, instance, patient_sensor)
    assert not result.run_requests

    # Unchanged since the last tick: complete.
    result, cursor = _tick(aimass_home, cursor, instance, patient_sensor)
    [request] = result.run_requests
    assert request.partition_key == hashlib.sha256(text.encode()).hexdigest()[:16]

    # Without a cursor (a restart), only the age of the file tells: older than the window is settled.
    old = _land(aimass_home, "old.csv", credit_frame.iloc[60:90])
    past = time.time() - 7200
    os.utime(old, (past, past))
    result, _ = _tick(aimass_home, cursor, instance, patient_sensor)
    assert [r.tags["aimass/batch_files"] for r in result.run_requests] == ["old.csv"]


def test_uploads_in_progress_and_other_files_are_ignored_and_a_bad_csv_still_gets_its_run(
    aimass_home: Settings, instance: DagsterInstance
) -> None:
    folder = aimass_home.landing_dir("credit_risk")
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not data")
    (folder / ".upload.csv").write_text("half")
    for suffix in (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".uploading"):
        (folder / f"data.csv{suffix}").write_text("half")
    (folder / "sub.csv").mkdir()
    (folder / "broken.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    result, _ = _tick(aimass_home, None, instance)
    # The run, not the sensor, decides on quarantine: the tick stays cheap and never fails on content.
    assert [r.tags["aimass/batch_files"] for r in result.run_requests] == ["broken.csv"]


def test_many_tiny_files_make_a_few_batches_and_a_tick_takes_a_capped_number(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    for i in range(200):
        _land(aimass_home, f"tiny_{i:03d}.csv", credit_frame.iloc[i : i + 1])
    result, _ = _tick(aimass_home, None, instance)
    assert len(result.run_requests) == 2
    sizes = [
        len(r.run_config["ops"]["credit_risk__raw_applications_batch"]["config"]["members"])
        for r in result.run_requests
    ]
    assert sizes == [100, 100]
    assert len({r.partition_key for r in result.run_requests}) == 2

    lake = Lake(aimass_home.lake_url)
    folder = aimass_home.landing_dir("credit_risk")
    taken, cursor, ticks = [], None, 0
    while True:
        tick = landing_tick(CREDIT, folder, lake, cursor, settle_s=0, max_batches=1)
        if not tick.requests:
            break
        assert len(tick.requests) == 1
        taken += [
            m["name"]
            for m in tick.requests[0].run_config["ops"]["credit_risk__raw_applications_batch"]["config"][
                "members"
            ]
        ]
        cursor, ticks = tick.cursor, ticks + 1
    assert ticks == 2 and sorted(taken) == sorted(f"tiny_{i:03d}.csv" for i in range(200))
