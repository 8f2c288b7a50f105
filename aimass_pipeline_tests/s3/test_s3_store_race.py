"""The raw zone's create-if-absent claim on SeaweedFS: a conditional PUT (If-None-Match: *) (issue 11, fault 6)."""

from pathlib import Path

from aimass_pipeline.core.lake import Lake
from aimass_pipeline_tests.collection.test_store_race import RACERS, _assert_once, _landed, _race
from aimass_pipeline_tests.s3.seaweed import S3Server


def test_racers_on_an_s3_lake_store_a_batch_once(tmp_path: Path, s3_server: S3Server) -> None:
    landing = tmp_path / "landing"
    one, two = _landed(landing, "one.csv", "a,b\n1,2\n"), _landed(landing, "two.csv", "a,b\n3,4\n")
    url = f"s3://{s3_server.bucket}/race-{tmp_path.name}"
    jobs = [("b1", [one])] * RACERS + [("b2", [two])] * RACERS
    results = _race(lambda: Lake(url, s3_server.storage_options), jobs)
    _assert_once(Lake(url, s3_server.storage_options), results, [batch_id for batch_id, _ in jobs])
