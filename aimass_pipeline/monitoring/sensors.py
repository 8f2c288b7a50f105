"""A drift sensor per use case: the monitoring reports' verdict launches the retrain job, with a cool-down."""

import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from aimass_pipeline.monitoring.reports import REPORTS
from aimass_pipeline.monitoring.retrain_trigger import Signal, TriggerState, decide
from aimass_pipeline.orchestration.use_case import USE_CASE_TAG, UseCase


def _signals(context: SensorEvaluationContext, uc: UseCase) -> list[Signal]:
    signals = []
    for name in REPORTS:
        records = context.instance.fetch_materializations(uc.key(name), limit=1).records
        if not records:
            continue
        record = records[0]
        metadata = record.asset_materialization.metadata
        recommended = metadata.get("retrain_recommended")
        reason = metadata.get("reason")
        signals.append(
            Signal(
                asset=name,
                storage_id=record.storage_id,
                run_id=record.run_id,
                recommended=bool(recommended.value) if recommended is not None else False,
                reason=str(reason.value) if reason is not None else "",
            )
        )
    return signals


def build_drift_sensor(uc: UseCase):
    cooldown_s = uc.spec.monitoring.cooldown_s

    # job_name, not job: the retrain job is defined with the other jobs and resolved when Definitions load.
    @sensor(
        name=f"{uc.name}_drift_sensor",
        job_name=uc.retrain_job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Retrains {uc.name} when monitoring recommends it, at most once per "
        f"{cooldown_s:.0f} s and once per drift report.",
    )
    def drift_sensor(context: SensorEvaluationContext):
        decision = decide(_signals(context, uc), TriggerState.loads(context.cursor), time.time(), cooldown_s)
        if not decision.launch:
            return SkipReason(decision.reason)
        trigger = decision.trigger
        context.update_cursor(decision.state.dumps())
        return RunRequest(
            # A lost cursor must not relaunch for the same report either.
            run_key=f"{uc.name}:drift:{trigger.asset}:{trigger.storage_id}",
            tags={
                USE_CASE_TAG: uc.name,
                "aimass/trigger": "drift",
                "aimass/drift_run_id": trigger.run_id,
                "aimass/drift_asset": trigger.asset,
                "aimass/drift_reason": decision.reason[:200],
            },
        )

    return drift_sensor
