"""The Dagster code location: every stage's assets, checks, jobs, sensors and schedules for every use-case
spec, and the resources they run with. It only assembles: each stage builds its own definitions."""

from dagster import AssetChecksDefinition, Definitions, EnvVar, JobDefinition, in_process_executor

from aimass_pipeline.analysis.assets import build_analysis
from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.collection.sensors import build_landing_sensor
from aimass_pipeline.core.specs import SpecError, UseCaseSpec
from aimass_pipeline.deployment.assets import build_deployment
from aimass_pipeline.deployment.resources import BentoResource
from aimass_pipeline.evaluation.assets import build_evaluation, build_registration
from aimass_pipeline.monitoring.assets import build_monitoring, build_reference
from aimass_pipeline.monitoring.jobs import build_monitoring_job
from aimass_pipeline.monitoring.schedules import build_monitoring_schedule
from aimass_pipeline.monitoring.sensors import build_drift_sensor
from aimass_pipeline.optimisation.assets import build_optimisation
from aimass_pipeline.orchestration.jobs import build_lifecycle_job, build_retrain_job
from aimass_pipeline.orchestration.resources import (
    LabelsZoneResource,
    LakeIOManager,
    LakeResource,
    LandingZoneResource,
    MlflowResource,
)
from aimass_pipeline.orchestration.spec_errors import build_spec_error_asset
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.preprocessing.assets import build_preprocessing
from aimass_pipeline.rollout.assets import build_rollout
from aimass_pipeline.rollout.sensors import build_canary_sensor
from aimass_pipeline.settings import load_settings
from aimass_pipeline.training.assets import build_training
from aimass_pipeline.transformation.assets import build_transformation, build_warehouse_models
from aimass_pipeline.transformation.checks import build_model_table_check
from aimass_pipeline.transformation.resources import WarehouseInputManager, dbt_resource, warehouse_resource

# In lifecycle order.
STAGES = (
    build_collection,
    build_preprocessing,
    build_transformation,
    build_model_table_check,
    build_analysis,
    build_training,
    build_optimisation,
    build_evaluation,
    build_registration,
    build_reference,
    build_deployment,
    build_monitoring,
    build_rollout,
)


def build_resources(dbt_target: str) -> dict:
    """Every resource, bound to the variables ``Settings.prepare()`` exports (read when a run starts)."""
    lake = LakeResource(url=EnvVar("AIMASS_LAKE_URL"))
    warehouse = warehouse_resource(dbt_target)
    return {
        "lake": lake,
        "landing": LandingZoneResource(root=EnvVar("AIMASS_LANDING_ROOT")),
        "labels": LabelsZoneResource(root=EnvVar("AIMASS_LABELS_ROOT")),
        "mlflow": MlflowResource(
            tracking_uri=EnvVar("MLFLOW_TRACKING_URI"),
            artifact_root=EnvVar("AIMASS_MLFLOW_ARTIFACTS"),
            signing_key=EnvVar("AIMASS_SIGNING_KEY"),
        ),
        "warehouse": warehouse,
        "io_manager": LakeIOManager(lake=lake, signing_key=EnvVar("AIMASS_SIGNING_KEY")),
        "warehouse_io": WarehouseInputManager(warehouse=warehouse),
        "dbt": dbt_resource(dbt_target),
        "bento": BentoResource(home=EnvVar("BENTOML_HOME")),
    }


def build_definitions(
    specs: dict[str, UseCaseSpec], dbt_target: str | None = None, broken: dict[str, SpecError] | None = None
) -> Definitions:
    """The definitions of ``specs``; ``dbt_target`` defaults to the environment's (``Settings.dbt_target``).
    Each use case in ``broken`` shows up as one failing ``<use case>/spec`` asset naming its error."""
    assets, checks, jobs, sensors, schedules = [build_warehouse_models(specs)], [], [], [], []
    assets.extend(build_spec_error_asset(name, error) for name, error in (broken or {}).items())
    for spec in specs.values():
        uc = UseCase(spec)
        for stage in STAGES:
            for definition in stage(uc):
                (checks if isinstance(definition, AssetChecksDefinition) else assets).append(definition)
        job = build_lifecycle_job(uc)
        monitoring_job = build_monitoring_job(uc)
        jobs.extend([job, build_retrain_job(uc), monitoring_job])
        sensors.extend([build_landing_sensor(uc, job), build_drift_sensor(uc), build_canary_sensor(uc)])
        schedules.append(build_monitoring_schedule(uc, monitoring_job))
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        resources=build_resources(dbt_target or load_settings().dbt_target),
        executor=in_process_executor,
    )


_settings = load_settings()
defs = build_definitions(_settings.use_case_specs(), _settings.dbt_target, _settings.spec_errors())


def job_named(name: str) -> JobDefinition:
    """A job of ``defs`` by name: what a Celery worker rebuilds (orchestration.jobs.RECONSTRUCTOR)."""
    return defs.resolve_job_def(name)
