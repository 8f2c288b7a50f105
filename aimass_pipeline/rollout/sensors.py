"""The canary sensor of each use case: looks at the running canary, promotes or stops it, and has the
``canary_decision`` asset materialised so the UI shows the statistic against its boundary."""

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from aimass_pipeline.orchestration.resources import LabelsZoneResource, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import USE_CASE_TAG, UseCase
from aimass_pipeline.rollout.decide import act, look


def build_canary_sensor(uc: UseCase):
    @sensor(
        name=f"{uc.name}_canary_sensor",
        asset_selection=[uc.key("canary_decision")],
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Decides a running {uc.name} canary by its registered mSPRT and guards: promotes it "
        "through the registry, or stops it.",
    )
    def canary_sensor(
        context: SensorEvaluationContext,
        lake: LakeResource,
        labels: LabelsZoneResource,
        mlflow: MlflowResource,
    ):
        store = lake.lake()
        looked = look(store, labels.location(uc.name), uc.name, uc.contract.target, list(uc.contract.classes))
        if looked is None:
            return SkipReason("no canary running")
        arm, verdict = looked
        done = act(store, mlflow.client(), uc.name, arm, verdict)
        n = verdict.test.n_challenger if verdict.test else 0
        context.log.info(f"{uc.name} canary v{arm.version}: {verdict.action}: {verdict.reason} -> {done}")
        # One plot per new labelled count, and one for the decision.
        return RunRequest(
            run_key=f"{uc.name}:canary:{arm.id}:{verdict.action}:{n}",
            asset_selection=[uc.key("canary_decision")],
            tags={USE_CASE_TAG: uc.name, "aimass/trigger": "canary", "aimass/canary_action": verdict.action},
        )

    return canary_sensor
