"""The Dagster code location: assembles assets, checks, jobs, sensors and resources."""

from dagster import (
    Definitions,
    EnvVar,
    in_process_executor,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from aimass_pipeline.analysis import assets as analysis_assets
from aimass_pipeline.collection import assets as collection_assets
from aimass_pipeline.collection.sensors import landing_sensor
from aimass_pipeline.deployment import assets as deployment_assets
from aimass_pipeline.deployment.assets import BentoResource
from aimass_pipeline.evaluation import assets as evaluation_assets
from aimass_pipeline.jobs import lifecycle_job
from aimass_pipeline.preprocessing import assets as preprocessing_assets
from aimass_pipeline.registration import assets as registration_assets
from aimass_pipeline.resources import default_resources
from aimass_pipeline.training import assets as training_assets
from aimass_pipeline.transformation import assets as transformation_assets

_MODULES = [
    collection_assets,
    preprocessing_assets,
    transformation_assets,
    analysis_assets,
    training_assets,
    evaluation_assets,
    registration_assets,
    deployment_assets,
]

defs = Definitions(
    assets=load_assets_from_modules(_MODULES),
    asset_checks=load_asset_checks_from_modules(_MODULES),
    jobs=[lifecycle_job],
    sensors=[landing_sensor],
    resources={**default_resources(), "bento": BentoResource(home=EnvVar("BENTOML_HOME"))},
    executor=in_process_executor,
)
