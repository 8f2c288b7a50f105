"""The Dagster code location: assets, checks, jobs and sensors generated from every use-case spec."""

from dagster import AssetChecksDefinition, Definitions, EnvVar, in_process_executor

from aimass_pipeline.analysis.assets import build_analysis
from aimass_pipeline.catalog import use_case_specs
from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.collection.sensors import build_landing_sensor
from aimass_pipeline.deployment.assets import BentoResource, build_deployment
from aimass_pipeline.evaluation.assets import build_evaluation
from aimass_pipeline.jobs import build_lifecycle_job, build_retrain_job
from aimass_pipeline.lib.specs import UseCaseSpec
from aimass_pipeline.monitoring.assets import build_monitoring
from aimass_pipeline.monitoring.reference import build_reference
from aimass_pipeline.monitoring.schedules import build_monitoring_job, build_monitoring_schedule
from aimass_pipeline.monitoring.sensors import build_drift_sensor
from aimass_pipeline.optimisation.assets import build_optimisation
from aimass_pipeline.preprocessing.assets import build_preprocessing
from aimass_pipeline.registration.assets import build_registration
from aimass_pipeline.resources import LabelsZoneResource, default_resources
from aimass_pipeline.training.assets import build_training
from aimass_pipeline.transformation.assets import build_transformation, warehouse_models
from aimass_pipeline.transformation.checks import build_model_table_check
from aimass_pipeline.use_case import UseCase

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
)


def build_definitions(specs: dict[str, UseCaseSpec]) -> Definitions:
    assets, checks, jobs, sensors, schedules = [warehouse_models], [], [], [], []
    for spec in specs.values():
        uc = UseCase(spec)
        for stage in STAGES:
            for definition in stage(uc):
                (checks if isinstance(definition, AssetChecksDefinition) else assets).append(definition)
        job = build_lifecycle_job(uc)
        jobs.extend([job, build_retrain_job(uc)])
        sensors.append(build_landing_sensor(uc, job))
        monitoring_job = build_monitoring_job(uc)
        jobs.append(monitoring_job)
        schedules.append(build_monitoring_schedule(uc, monitoring_job))
        sensors.append(build_drift_sensor(uc))
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        resources={
            **default_resources(),
            "bento": BentoResource(home=EnvVar("BENTOML_HOME")),
            "labels": LabelsZoneResource(root=EnvVar("AIMASS_LABELS_ROOT")),
        },
        executor=in_process_executor,
    )


defs = build_definitions(use_case_specs())
