"""Nothing AIMass unpickles can come from someone with write access to the lake or the artifact store:
a tampered value or model is refused before a byte of it is unpickled (no payload runs)."""

import pickle
import shutil
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
from dagster import AssetIn, DagsterInstance, asset, materialize
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from aimass_pipeline.core.registry import ensure_experiment, register_version
from aimass_pipeline.core.signing import PICKLE_HEADER, UntrustedArtifactError
from aimass_pipeline.models.ensemble import SoftVotingEnsemble
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, MlflowResource
from aimass_pipeline.serving.champion import load_served
from aimass_pipeline.settings import Settings
from aimass_pipeline.training.tracking import log_candidate


class Payload:
    """Unpickling this writes ``marker``: the proof that a pickle's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _lake_run(settings: Settings, produce: bool):
    @asset(key_prefix="t")
    def fitted() -> object:
        return {"model": LogisticRegression(C=0.5), "classes": (0, 1)}  # not JSON: a signed pickle

    @asset(key_prefix="t", ins={"fitted": AssetIn(key=["t", "fitted"])})
    def uses(fitted: object) -> dict:
        return {"C": fitted["model"].C}  # JSON

    lake = LakeResource(url=settings.lake_url)
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            [fitted, uses],
            selection=None if produce else [uses.key],
            instance=instance,
            raise_on_error=False,
            resources={"lake": lake, "io_manager": LakeIOManager(lake=lake)},
        )


def _failure(result) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.cause.message


def test_a_tampered_lake_value_is_refused_unread(aimass_home: Settings, tmp_path: Path) -> None:
    assert _lake_run(aimass_home, produce=True).success
    stored = Path(aimass_home.lake_url) / "assets" / "t" / "fitted.pkl"
    assert stored.read_bytes().startswith(PICKLE_HEADER)
    assert (Path(aimass_home.lake_url) / "assets" / "t" / "uses.json").read_text() == '{"C": 0.5}'
    assert _lake_run(aimass_home, produce=False).success, "a signed value loads"

    marker = tmp_path / "lake-payload-ran"
    for tampered in (
        pickle.dumps(Payload(marker)),  # a plain pickle, as the IO manager used to write
        stored.read_bytes()[: len(PICKLE_HEADER) + 65] + pickle.dumps(Payload(marker)),  # old signature
    ):
        stored.write_bytes(tampered)
        result = _lake_run(aimass_home, produce=False)
        assert not marker.exists(), "the tampered pickle was unpickled: its payload ran"
        assert not result.success
        message = _failure(result)
        assert "assets/t/fitted.pkl" in message and "refused unread" in message, message


@pytest.fixture
def logged(aimass_home: Settings) -> tuple[MlflowResource, str]:
    """A cloudpickled ensemble (what compressed variants and ensembles are stored as), registered."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] > 0).astype(int).to_numpy()
    model = SoftVotingEnsemble(members=[LogisticRegression().fit(X, y)], names=["logreg"])
    resource = MlflowResource(
        tracking_uri=aimass_home.mlflow_tracking_uri, artifact_root=aimass_home.mlflow_artifacts_uri
    )
    client = resource.client()
    run_id, model_uri = log_candidate(
        experiment_id=ensure_experiment(client, "signed", aimass_home.mlflow_artifacts_uri),
        run_name="signed",
        model=model,
        params={},
        metrics={"train_rows": 60.0},
        example=X.head(5),
        tags={},
        code_version="test",
        signing_key=resource.signing_key_value(),
        serialization="cloudpickle",
    )
    version = register_version(client, "signed", model_uri, run_id, {}, "signing test")
    np.testing.assert_allclose(
        resource.load_model(f"models:/signed/{version.version}").predict_proba(X), model.predict_proba(X)
    )
    return resource, str(version.version)


def _model_dir(version: str) -> Path:
    uri = MlflowClient().get_model_version_download_uri("signed", version)
    return Path(urlparse(uri).path if uri.startswith("file:") else uri)


def test_a_tampered_registered_model_is_refused_unread(
    logged: tuple[MlflowResource, str], tmp_path: Path
) -> None:
    resource, version = logged
    marker = tmp_path / "model-payload-ran"
    (_model_dir(version) / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UntrustedArtifactError, match=r"\['model.pkl'\].*refused unread"):
        resource.load_model(f"models:/signed/{version}")
    assert not marker.exists(), "the tampered model was unpickled: its payload ran"


def test_a_model_signed_with_another_key_or_unsigned_is_refused(
    logged: tuple[MlflowResource, str], aimass_home: Settings
) -> None:
    resource, version = logged
    uri = f"models:/signed/{version}"
    other = MlflowResource(
        tracking_uri=resource.tracking_uri, artifact_root=resource.artifact_root, signing_key="another key"
    )
    with pytest.raises(UntrustedArtifactError, match="does not match its signature"):
        other.load_model(uri)
    (_model_dir(version) / "aimass_signature.json").unlink()
    with pytest.raises(UntrustedArtifactError, match="unsigned model is not loaded"):
        resource.load_model(uri)
    mlflow.set_tracking_uri(aimass_home.mlflow_tracking_uri)


def test_a_tampered_model_directory_is_refused_as_the_bento_loads_it(
    logged: tuple[MlflowResource, str], tmp_path: Path
) -> None:
    """The Bento model store holds a copy of the MLflow model directory; the service loads that path."""
    resource, version = logged
    copy = Path(shutil.copytree(_model_dir(version), tmp_path / "mlflow_model"))
    assert load_served(str(copy), resource.signing_key_value()).predict_proba is not None
    marker = tmp_path / "bento-payload-ran"
    (copy / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UntrustedArtifactError, match="refused unread"):
        load_served(str(copy), resource.signing_key_value())
    assert not marker.exists(), "the tampered model was unpickled: its payload ran"
