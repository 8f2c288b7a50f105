"""A small code location with the sensor and schedule names the real one gives a use case (plus another use
case's, which retiring must leave alone): `aimass retire` is tested against it without loading the whole
platform's definitions."""

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    ScheduleDefinition,
    SkipReason,
    job,
    op,
    sensor,
)


@op
def noop() -> None:
    pass


@job
def noop_job() -> None:
    noop()


def _sensor(name: str, status: DefaultSensorStatus):
    @sensor(name=name, job=noop_job, default_status=status, minimum_interval_seconds=30)
    def _tick(context):
        return SkipReason("test")

    return _tick


defs = Definitions(
    jobs=[noop_job],
    sensors=[
        _sensor("credit_risk_landing_sensor", DefaultSensorStatus.RUNNING),
        _sensor("credit_risk_drift_sensor", DefaultSensorStatus.STOPPED),
        _sensor("breast_cancer_landing_sensor", DefaultSensorStatus.RUNNING),
    ],
    schedules=[
        ScheduleDefinition(
            name="credit_risk_monitoring_schedule",
            job=noop_job,
            cron_schedule="0 * * * *",
            default_status=DefaultScheduleStatus.RUNNING,
        )
    ],
)
