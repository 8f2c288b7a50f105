"""The rollout sensor of each use case: decides the running canary (promote or stop) and has its
``canary_decision`` asset materialised so the UI shows the statistic against its boundary; refreshes the running
shadow's ``shadow_report`` every ``SHADOW_REPORT_S``."""

import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from aimass_pipeline.core.rollout import read_state
from aimass_pipeline.orchestration.resources import LabelsZoneResource, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import USE_CASE_TAG, UseCase
from aimass_pipeline.rollout.decide import act, look

SHADOW_REPORT_S = 600


def build_canary_sensor(uc: UseCase):
    @sensor(
        name=f"{uc.name}_canary_sensor",
        asset_selection=[uc.key("canary_decision"), uc.key("shadow_report")],
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Decides a running {uc.name} canary by its registered mSPRT and guards: promotes it "
        "through the registry, or stops it; refreshes the running shadow's report.",
    )
    def canary_sensor(
        context: SensorEvaluationContext,
        lake: LakeResource,
        labels: LabelsZoneResource,
        mlflow: MlflowResource,
    ):
        store = lake.lake()
        requests = []
        tags = {USE_CASE_TAG: uc.name, "aimass/trigger": "rollout"}
        shadow = read_state(store, uc.name).shadow
        if shadow is not None:
            requests.append(
                RunRequest(
                    run_key=f"{uc.name}:shadow:{shadow.id}:{int(time.time() // SHADOW_REPORT_S)}",
                    asset_selection=[uc.key("shadow_report")],
                    tags=tags,
                )
            )
        looked = look(store, labels.location(uc.name), uc.name, uc.contract.target, list(uc.contract.classes))
        if looked is not None:
            arm, verdict = looked
            done = act(store, mlflow.client(), uc.name, arm, verdict)
            n = verdict.test.n_challenger if verdict.test else 0
            context.log.info(f"{uc.name} canary v{arm.version}: {verdict.action}: {verdict.reason} -> {done}")
            # One plot per new labelled count, and one for the decision.
            requests.append(
                RunRequest(
                    run_key=f"{uc.name}:canary:{arm.id}:{verdict.action}:{n}",
                    asset_selection=[uc.key("canary_decision")],
                    tags={**tags, "aimass/canary_action": verdict.action},
                )
            )
        if not requests:
            return SkipReason("no canary or shadow running")
        return SensorResult(run_requests=requests)

    return canary_sensor
