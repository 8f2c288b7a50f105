"""The landing zone on an s3:// prefix of a real S3 server: sensor ticks, the raw-batch run, quarantine,
`aimass quarantine list|retry` and the retried batch's fresh run key."""

import argparse
import json
from dataclasses import dataclass

import pandas as pd
import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

from aimass_pipeline.cli.lifecycle import _new_batches
from aimass_pipeline.cli.quarantine import cmd_quarantine_list, cmd_quarantine_retry
from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.collection.landing import list_landed_files, seed_landing_zone
from aimass_pipeline.collection.sensors import build_landing_sensor
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.monitoring.live_performance import read_labels
from aimass_pipeline.orchestration.jobs import build_lifecycle_job
from aimass_pipeline.orchestration.resources import (
    LabelsZoneResource,
    LakeIOManager,
    LakeResource,
    LandingZoneResource,
)
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import Settings, load_settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC
from aimass_pipeline_tests.s3.seaweed import S3Server

CREDIT = UseCase(CREDIT_SPEC)
SENSOR = build_landing_sensor(CREDIT, build_lifecycle_job(CREDIT), settle_s=0)
RUN_KEY_TAG = "dagster/run_key"


@dataclass
class Zone:
    server: S3Server
    settings: Settings
    prefix: str  # bucket/<test>: landing/, quarantine/ and lake/ below it
    instance: DagsterInstance

    def resources(self) -> dict:
        lake = LakeResource(url=self.settings.lake_url)
        return {
            "landing": LandingZoneResource(root=str(self.settings.landing_root)),
            "lake": lake,
            "io_manager": LakeIOManager(lake=lake),
        }

    def land(self, name: str, frame: pd.DataFrame) -> bytes:
        data = frame.to_csv(index=False).encode()
        self.server.filesystem().pipe(f"{self.prefix}/landing/credit_risk/{name}", data)
        return data

    def names(self, folder: str) -> list[str]:
        fs = self.server.filesystem()
        path = f"{self.prefix}/{folder}"
        return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path)) if fs.exists(path) else []

    def objects(self, folder: str) -> list[str]:
        # SeaweedFS keeps an emptied "folder" as a directory entry; only objects count.
        found = self.server.filesystem().find(f"{self.prefix}/{folder}", detail=True)
        return sorted(name for name, info in found.items() if info["type"] == "file")

    def tick(self, cursor: str | None) -> SensorResult:
        resources = {k: v for k, v in self.resources().items() if k != "io_manager"}
        context = build_sensor_context(cursor=cursor, instance=self.instance, resources=resources)
        result = SENSOR(context)
        assert isinstance(result, SensorResult)
        return result

    def run(self, request):
        """The batch asset for one request, tagged with its run key as the daemon tags sensor runs."""
        self.instance.add_dynamic_partitions(CREDIT.batches.name, [request.partition_key])
        return materialize(
            build_collection(CREDIT),
            instance=self.instance,
            partition_key=request.partition_key,
            run_config=request.run_config,
            selection=[CREDIT.key(CREDIT.raw_batch)],
            tags={**request.tags, RUN_KEY_TAG: request.run_key},
            resources=self.resources(),
            raise_on_error=False,
        )

    def run_keys(self) -> set[str]:
        return {run.tags[RUN_KEY_TAG] for run in self.instance.get_runs()}


@pytest.fixture
def zone(s3_server: S3Server, aimass_home: Settings, request, monkeypatch: pytest.MonkeyPatch):
    prefix = f"{s3_server.bucket}/{request.node.name[:40]}"
    env = {
        **s3_server.env,
        "AIMASS_LANDING_URL": f"s3://{prefix}/landing",
        "AIMASS_LAKE_URL": f"s3://{prefix}/lake",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.ephemeral() as instance:
        yield Zone(s3_server, load_settings().prepare(), prefix, instance)


def _members(request) -> list[str]:
    return [
        m["name"]
        for m in request.run_config["ops"]["credit_risk__raw_applications_batch"]["config"]["members"]
    ]


def test_a_file_landed_on_s3_is_stored_once_and_a_bad_one_is_quarantined_listed_retried_and_retaken(
    zone: Zone, credit_frame: pd.DataFrame, capsys: pytest.CaptureFixture
) -> None:
    assert (
        zone.settings.quarantine_location("credit_risk").url() == f"s3://{zone.prefix}/quarantine/credit_risk"
    )
    good = zone.land("good.csv", credit_frame.head(30))
    first = zone.tick(None)
    [request] = first.run_requests
    assert _members(request) == ["good.csv"] and request.run_key == f"credit_risk:{request.partition_key}"
    assert zone.run(request).success
    lake = Lake(zone.settings.lake_url, zone.settings.storage_options)
    [manifest] = lake.raw_batches("credit_risk")
    assert lake.read_bytes("raw", "credit_risk", f"batch={request.partition_key}", "good.csv") == good
    # Exactly once: neither the next tick nor one after a lost cursor asks again for stored bytes.
    assert not zone.tick(first.cursor).run_requests and not zone.tick(None).run_requests

    zone.land("no_job.csv", credit_frame.iloc[30:40].drop(columns=["Job"]))
    second = zone.tick(first.cursor)
    [bad] = second.run_requests
    failed = zone.run(bad)
    assert not failed.success
    assert "no_job.csv" not in zone.names("landing/credit_risk")
    [stored, reason_file] = zone.names("quarantine/credit_risk")
    assert stored.endswith("-no_job.csv") and reason_file == stored + ".json"
    reason = json.loads(zone.server.filesystem().cat(f"{zone.prefix}/quarantine/credit_risk/{reason_file}"))
    assert (reason["rule"], reason["column"]) == ("columns.missing", "Job")
    assert [m["batch_id"] for m in lake.raw_batches("credit_risk")] == [manifest["batch_id"]]

    cmd_quarantine_list(argparse.Namespace(use_case="credit_risk", json=True))
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["file"], entry["quarantined_file"], entry["rule"]) == (
        "no_job.csv",
        stored,
        "columns.missing",
    )

    # The retry comes before the sensor saw the file leave: neither the cursor nor the used run key may
    # hold the same bytes back.
    cmd_quarantine_retry(argparse.Namespace(use_case="credit_risk", file="no_job.csv"))
    assert zone.names("quarantine/credit_risk") == [".retries.json"]
    assert "no_job.csv" in zone.names("landing/credit_risk")
    [again] = zone.tick(second.cursor).run_requests
    assert again.partition_key == bad.partition_key and again.run_key == f"{bad.run_key}:retry1"
    assert bad.run_key in zone.run_keys() and again.run_key not in zone.run_keys()
    # A lost cursor asks under the same key, which Dagster runs once.
    [after_restart] = zone.tick(None).run_requests
    assert after_restart.run_key == again.run_key


def test_an_object_replaced_between_the_tick_and_the_run_fails_it_and_stores_nothing(
    zone: Zone, credit_frame: pd.DataFrame
) -> None:
    zone.land("moving.csv", credit_frame.head(20))
    tick = zone.tick(None)
    [request] = tick.run_requests
    zone.land("moving.csv", credit_frame.iloc[20:50])

    result = zone.run(request)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "moving.csv changed after it was listed" in message and "Nothing was stored" in message
    assert zone.objects("lake/raw") == [] and zone.objects("quarantine") == []
    assert zone.names("landing/credit_risk") == ["moving.csv"]
    # Same size class, new bytes and ETag: the next tick hashes the object again and takes the new bytes.
    [retaken] = zone.tick(tick.cursor).run_requests
    assert retaken.partition_key != request.partition_key


def test_a_long_lived_lake_sees_batches_another_process_stores(s3_server: S3Server, tmp_path) -> None:
    # The sensor's code server lists the raw zone every tick while runs in other processes store batches:
    # s3fs's listing cache must not hide them (the manifest cache only ever holds written manifests).
    url = f"s3://{s3_server.bucket}/{tmp_path.name}"
    options = {
        "key": s3_server.env["AWS_ACCESS_KEY_ID"],
        "secret": s3_server.env["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"},
    }
    sensor_side = Lake(url, options)
    assert sensor_side.stored_hashes("uc") == {}
    run_side = Lake(url, {**options, "skip_instance_cache": True})
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_bytes(f"x\n{name}\n".encode())
        [landed] = [f for f in list_landed_files(tmp_path) if f.name == name]
        run_side.store_raw_batch("uc", landed.batch_id, [landed])
        assert landed.sha256 in sensor_side.stored_hashes("uc")
    assert len(sensor_side.raw_batches("uc")) == 2


def test_seeding_and_aimass_ingest_find_files_on_an_s3_landing_zone(zone: Zone) -> None:
    landing = zone.settings.landing_location("credit_risk")
    seeded = seed_landing_zone(landing, CREDIT_SPEC.contract, CREDIT_SPEC.data.seed_source)
    assert seeded == f"s3://{zone.prefix}/landing/credit_risk/credit_risk_0001.csv"
    assert zone.objects("landing") == [f"{zone.prefix}/landing/credit_risk/credit_risk_0001.csv"]
    assert seed_landing_zone(landing, CREDIT_SPEC.contract, CREDIT_SPEC.data.seed_source) is None
    # What `aimass ingest` and `aimass run` start: every batch the sensor would, tick after tick.
    [request] = _new_batches(CREDIT, zone.settings, settle_s=0)
    assert _members(request) == ["credit_risk_0001.csv"]


def test_labels_on_an_s3_prefix_are_read_and_a_bad_one_is_named_by_its_url(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMASS_LABELS_URL", f"s3://{zone.prefix}/labels")
    settings = load_settings().prepare()
    labels = LabelsZoneResource(root=str(settings.labels_root))
    folder = labels.location("credit_risk")
    fs = zone.server.filesystem()
    fs.pipe(f"{zone.prefix}/labels/credit_risk/day1.csv", b"prediction_id,Status\np1,good\np2, BAD\n")
    pd.DataFrame({"prediction_id": ["p3"], "Status": ["good"]}).to_parquet(
        f"s3://{zone.prefix}/labels/credit_risk/day2.parquet", storage_options=settings.storage_options
    )
    fs.pipe(f"{zone.prefix}/labels/credit_risk/.uploading.csv", b"garbage")

    landed = read_labels(folder, "Status", ["bad", "good"])

    assert folder.url() == f"s3://{zone.prefix}/labels/credit_risk"
    assert sorted(zip(landed["prediction_id"], landed["Status"], strict=True)) == [
        ("p1", "good"),
        ("p2", "bad"),
        ("p3", "good"),
    ]
    fs.pipe(f"{zone.prefix}/labels/credit_risk/day3.csv", b"prediction_id,Status\np4,maybe\n")
    with pytest.raises(DataContractError, match="labels must be one of") as caught:
        read_labels(folder, "Status", ["bad", "good"])
    assert caught.value.source == f"s3://{zone.prefix}/labels/credit_risk/day3.csv"
    assert caught.value.rows == [2]
