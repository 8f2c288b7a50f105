"""The Dagster instance `Settings.prepare()` writes: what queues, times out and retries runs."""

from dagster import DagsterInstance

from aimass_pipeline.settings import Settings


def test_the_instance_queues_times_out_and_retries_only_runs_that_failed_outside_their_assets(
    aimass_home: Settings,
) -> None:
    with DagsterInstance.get() as instance:
        queue = instance.run_coordinator.get_run_queue_config()
        assert queue is not None and queue.max_concurrent_runs == 2
        [limit] = queue.tag_concurrency_limits
        assert limit["key"] == "aimass/use_case" and limit["limit"] == 1
        assert instance.run_monitoring_enabled and instance.run_monitoring_start_timeout_seconds == 300
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        # A batch that failed on its data must be looked at, not run again.
        assert not instance.run_retries_retry_on_asset_or_op_failure
