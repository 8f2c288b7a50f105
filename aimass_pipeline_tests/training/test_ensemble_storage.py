"""An ensemble of members skops can store is stored by skops too, and loads back as the same model; only a
pickled variant (a compressed member) is pickled, and MLflow's pickle warning is not repeated for it
(issue 13 item 3: warnings fixed at their cause, not hidden)."""

import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aimass_pipeline.core.registry import ensure_experiment
from aimass_pipeline.models.ensemble import SoftVotingEnsemble
from aimass_pipeline.orchestration.resources import MlflowResource
from aimass_pipeline.settings import Settings
from aimass_pipeline.training.assets import _ensemble_serialization
from aimass_pipeline.training.tracking import log_candidate


def _members() -> tuple[pd.DataFrame, SoftVotingEnsemble]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.normal(scale=0.5, size=80) > 0).astype(int).to_numpy()
    members = [make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X, y) for c in (0.1, 1.0)]
    return X, SoftVotingEnsemble(members=members, names=["logreg", "logreg"])


@pytest.mark.parametrize("compressed", [False, True])
def test_an_ensemble_is_stored_as_its_members_are(
    aimass_home: Settings, caplog: pytest.LogCaptureFixture, compressed: bool
) -> None:
    X, model = _members()
    candidates = [{"family": "logreg", "compression_method": "int8" if compressed else "none"}] * 2
    storage = _ensemble_serialization(candidates)
    assert storage["serialization"] == ("cloudpickle" if compressed else "skops")
    resource = MlflowResource(
        tracking_uri=aimass_home.mlflow_tracking_uri, artifact_root=aimass_home.mlflow_artifacts_uri
    )
    mlflow.set_tracking_uri(aimass_home.mlflow_tracking_uri)
    with caplog.at_level(logging.WARNING, logger="mlflow"):
        _, uri = log_candidate(
            experiment_id=ensure_experiment(MlflowClient(), "ens", aimass_home.mlflow_artifacts_uri),
            run_name="ensemble",
            model=model,
            params={},
            metrics={},
            example=X.head(5),
            tags={},
            code_version="test",
            signing_key=resource.signing_key_value(),
            **storage,
        )
    assert "pickle" not in caplog.text, caplog.text
    loaded = resource.load_model(uri)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
