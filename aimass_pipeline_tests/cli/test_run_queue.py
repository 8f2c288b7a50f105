"""With a live daemon on the instance, `aimass ingest` queues runs instead of executing beside the daemon's
sensor, and never queues a batch twice (issue 11, fault 6)."""

import subprocess
import time

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._daemon.types import DaemonHeartbeat

from aimass_pipeline.collection.landing import seed_landing_zone
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import AIMASS, CREDIT_SPEC, ROOT, env_for


def test_with_a_live_daemon_ingest_queues_each_batch_once(aimass_home: Settings) -> None:
    seed_landing_zone(
        aimass_home.landing_location("credit_risk"), CREDIT_SPEC.contract, CREDIT_SPEC.data.seed_source
    )
    with DagsterInstance.get() as instance:
        # What `dagster-daemon` writes every 30 s; no daemon runs here, so a queued run stays queued.
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SENSOR", "test-daemon", []))
    ingest = [AIMASS, "ingest", "--use-case", "credit_risk", "--settle-s", "0"]
    env = env_for(aimass_home.home)
    first = subprocess.run(ingest, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=RunsFilter(tags={"aimass/use_case": "credit_risk"}))
        assert [run.status for run in runs] == [DagsterRunStatus.QUEUED], (
            f"expected one queued run, got {[(r.run_id, r.status) for r in runs]}: {first.stdout[-1500:]}"
        )
        batch = runs[0].tags["aimass/batch_id"]
        assert runs[0].tags["dagster/partition"] == batch and runs[0].job_name == "credit_risk_lifecycle"
    assert Lake(aimass_home.lake_url).raw_batches("credit_risk") == [], "the CLI stored the batch itself"
    assert f"batch {batch}: queued as run {runs[0].run_id}" in first.stdout

    second = subprocess.run(ingest, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"batch {batch}: already has run {runs[0].run_id}" in second.stdout, second.stdout
    with DagsterInstance.get() as instance:
        assert len(instance.get_runs(filters=RunsFilter(tags={"aimass/use_case": "credit_risk"}))) == 1
