"""A registration step that runs again (its Celery worker was killed after it registered, or the run was
retried after a database outage) must not add a second version of the same candidate run."""

from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from sklearn.dummy import DummyClassifier

from aimass_pipeline.core.registry import ensure_store, register_version


def test_the_same_run_registering_the_same_model_twice_gets_one_version(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(uri)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("retry", artifact_location=str(tmp_path / "artifacts"))
    with mlflow.start_run(experiment_id=experiment) as run:
        model_uri = mlflow.sklearn.log_model(
            DummyClassifier().fit([[0], [1]], [0, 1]), name="model", serialization_format="cloudpickle"
        ).model_uri
    tags = {"dagster.run_id": "run-a"}
    first = register_version(client, "retry", model_uri, run.info.run_id, tags, "d")
    again = register_version(client, "retry", model_uri, run.info.run_id, tags, "d")
    assert again.version == first.version
    assert len(client.search_model_versions("name='retry'")) == 1
    # A retry of the run (a new Dagster run id) registering the same candidate run gets it back too.
    retried = register_version(client, "retry", model_uri, run.info.run_id, {"dagster.run_id": "run-b"}, "d")
    assert retried.version == first.version
    assert len(client.search_model_versions("name='retry'")) == 1
