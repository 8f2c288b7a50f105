"""The Dagster instance file `Settings.prepare()` writes into DAGSTER_HOME, local and prod."""

# A flood of landed batches queues: two runs at once, one per use case (its batches stay in order). A run
# whose worker never reports STARTED is failed after 300 s, and a run that failed outside its assets (a launch
# or code-server failure) is retried once; a run that failed on its data stays failed, to be looked at.
_RUNS = """\
run_queue:
  max_concurrent_runs: 2
  tag_concurrency_limits:
    - key: aimass/use_case
      value:
        applyLimitPerUniqueValue: true
      limit: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  poll_interval_seconds: 60
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: false
"""

DAGSTER_YAML_LOCAL = (
    """\
telemetry:
  enabled: false
"""
    + _RUNS
)

DAGSTER_YAML_PROD = (
    """\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_db:
      scheme: postgresql+psycopg2
      hostname:
        env: AIMASS_PG_HOST
      port:
        env: AIMASS_PG_PORT
      username:
        env: AIMASS_PG_USER
      password:
        env: AIMASS_PG_PASSWORD
      db_name:
        env: AIMASS_PG_DAGSTER_DB
"""
    + _RUNS
)
