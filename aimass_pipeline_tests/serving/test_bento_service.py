"""The registry's champion, built into a bento and served over HTTP by a real ``bentoml serve``."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.registry import sign_logged_model
from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.deployment.bento import (
    NoChampionError,
    build_champion_bento,
    latest_bento_tag,
)
from aimass_pipeline.settings import Settings, load_settings
from aimass_pipeline_tests.bento_server import bento_server
from aimass_pipeline_tests.serving.rollout_checks import check_canary, check_shadow

USE_CASE = "credit_risk"
CONTRACT: Contract = load_specs()[USE_CASE].contract
# Everything Settings.prepare() writes into os.environ, restored after each test.
PREPARED_ENV = (
    "AIMASS_ENV",
    "AIMASS_SIGNING_KEY",
    "AIMASS_HOME",
    "DAGSTER_HOME",
    "MLFLOW_TRACKING_URI",
    "BENTOML_HOME",
    "AIMASS_LAKE_URL",
    "AIMASS_WAREHOUSE_PATH",
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "BENTOML_DO_NOT_TRACK",
    "DAGSTER_DISABLE_TELEMETRY",
)
VALID = {
    "Seniority": 3,
    "Home": "rent",
    "Time": 36,
    "Age": 30,
    "Marital": "single",
    "Records": "no",
    "Job": "fixed",
    "Expenses": 60,
    "Income": 120.5,
    "Assets": 0.0,
    "Debt": 0.0,
    "Amount": 800,
    "Price": 1000,
}
# Nullable Income and Home left out: the service must score it with NaN / None there.
SPARSE = {k: v for k, v in VALID.items() if k not in ("Income", "Home")} | {"Seniority": 40, "Age": 55}


@dataclass(frozen=True)
class Served:
    settings: Settings
    url: str
    bento_tag: str
    model: Pipeline
    log_path: Path


def _prepared_settings(home: Path, mp: pytest.MonkeyPatch) -> Settings:
    for name in PREPARED_ENV:
        mp.delenv(name, raising=False)
    settings = load_settings(home).prepare()
    # mlflow keeps a module-level URI once set; point it here and let monkeypatch put the old one back.
    mp.setattr(mlflow_tracking_utils, "_tracking_uri", settings.mlflow_tracking_uri)
    return settings


def _training_frame(seed: int, n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for col in CONTRACT.features:
        if col.kind == "category":
            values = rng.choice(np.array(col.categories, dtype=object), n)
        else:
            # Capped at 5,000 so StandardScaler sees sane spreads on Assets/Debt/Price.
            values = np.round(rng.uniform(col.min or 0, min(col.max or 5_000, 5_000), n)).astype(float)
        if col.nullable:
            values = np.where(rng.random(n) < 0.1, None if col.kind == "category" else np.nan, values)
        columns[col.name] = values
    frame = pd.DataFrame(columns)[CONTRACT.feature_names]
    frame[CONTRACT.categorical_features] = frame[CONTRACT.categorical_features].astype(object)
    # Short employment -> bad loan, so the probabilities differ between records.
    bad = frame["Seniority"].to_numpy() + rng.normal(0, 8, n) < 15
    # Label ids as the pipeline trains them: 1 is the spec's positive class ("bad").
    return frame, np.where(bad, 1, 0)


def _train(seed: int) -> Pipeline:
    frame, target = _training_frame(seed)
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), CONTRACT.numeric_features),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                CONTRACT.categorical_features,
            ),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))]).fit(frame, target)


def _register(settings: Settings, model: Pipeline) -> str:
    experiment = mlflow.get_experiment_by_name("serving-test")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment(
            "serving-test", artifact_location=Path(settings.mlflow_artifacts_uri).as_uri()
        )
    )
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=USE_CASE,
            # MLflow 3 saves sklearn with skops, which won't reload a OneHotEncoder (numpy.dtype) unless told.
            skops_trusted_types=["numpy.dtype"],
            # Inferring them imports the model in a child process: ~6 s per call.
            pip_requirements=["scikit-learn", "skops"],
        )
        # What AIMass logs is signed; the service refuses an unsigned model.
        sign_logged_model(info.model_id, info.model_uri, settings.signing_key())
    return str(info.registered_model_version)


def _crown(version: str) -> None:
    MlflowClient().set_registered_model_alias(USE_CASE, "champion", version)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("aimass")
    with pytest.MonkeyPatch.context() as mp:
        settings = _prepared_settings(home, mp)
        champion, challenger = _train(seed=7), _train(seed=8)
        first, second = _register(settings, champion), _register(settings, challenger)
        # v1 imported, then v2 (now the model store's "latest"), then a bento for v1 again: only a bento
        # pinned to its model serves v1, and the second import of v1 must be a no-op, not a clash.
        for version in (first, second, first):
            _crown(version)
            bento_tag = build_champion_bento(settings, USE_CASE)
        with bento_server(settings, USE_CASE, home / "bentoml-serve.log") as server:
            yield Served(
                settings=settings,
                url=server.url,
                bento_tag=bento_tag,
                model=champion,
                log_path=server.log_path,
            )


def _predict(served: Served, records: list[dict[str, Any]]) -> requests.Response:
    return requests.post(f"{served.url}/predict", json={"records": records}, timeout=30)


def test_predict_serves_the_pinned_champion(served: Served) -> None:
    response = _predict(served, [VALID, SPARSE])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == USE_CASE
    assert body["model_version"] == "1"
    expected_frame = pd.DataFrame([VALID, SPARSE], columns=CONTRACT.feature_names)
    expected_frame[CONTRACT.numeric_features] = expected_frame[CONTRACT.numeric_features].astype(float)
    expected_frame[CONTRACT.categorical_features] = (
        expected_frame[CONTRACT.categorical_features].astype(object).replace({np.nan: None})
    )
    expected = served.model.predict_proba(expected_frame)[:, 1]
    predictions = body["predictions"]
    assert len(predictions) == 2
    for got, want in zip(predictions, expected, strict=True):
        assert 0.0 <= got["probability"] <= 1.0
        assert math.isclose(got["probability"], want, abs_tol=1e-6)
        assert got["label"] == ("bad" if got["probability"] >= 0.5 else "good")
    assert abs(expected[0] - expected[1]) > 1e-3, "records should score differently"


@pytest.mark.parametrize(
    ("records", "field"),
    [
        pytest.param([VALID | {"Colour": "red"}], "Colour", id="unknown-column"),
        pytest.param([VALID | {"Age": "forty"}], "Age", id="string-for-int"),
        pytest.param([VALID | {"Age": "42"}], "Age", id="numeric-string-for-int"),
        pytest.param([VALID | {"Age": 5}], "Age", id="below-minimum"),
        pytest.param([VALID | {"Records": "maybe"}], "Records", id="unknown-category"),
        pytest.param(
            [{k: v for k, v in VALID.items() if k != "Seniority"}], "Seniority", id="missing-required"
        ),
        pytest.param([], "records", id="empty-list"),
    ],
)
def test_invalid_input_is_a_422_naming_the_field(
    served: Served, records: list[dict[str, Any]], field: str
) -> None:
    response = _predict(served, records)

    assert response.status_code == 422, response.text
    assert field in [str(part) for err in response.json()["detail"] for part in err["loc"]], response.text


def test_rejected_input_is_one_log_line_not_a_traceback(served: Served) -> None:
    response = _predict(served, [VALID | {"Debt": -1.0}])
    assert response.status_code == 422, response.text

    deadline = time.monotonic() + 10
    while "records.0.Debt" not in (log := served.log_path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "-> 422 (records.0.Debt: Input should be greater than or equal to 0)" in log
    assert "Traceback" not in log


def test_health_endpoints(served: Served) -> None:
    for path in ("/healthz", "/readyz"):
        assert requests.get(f"{served.url}{path}", timeout=5).status_code == 200, path


def test_the_bento_is_the_newest_for_its_use_case(served: Served) -> None:
    assert latest_bento_tag(served.settings, USE_CASE) == served.bento_tag
    assert served.bento_tag.startswith(f"{USE_CASE}:")


@pytest.mark.parametrize("registered", [False, True], ids=["no-registered-model", "no-alias"])
def test_build_without_a_champion_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registered: bool
) -> None:
    settings = _prepared_settings(tmp_path, monkeypatch)
    if registered:
        MlflowClient().create_registered_model(USE_CASE)

    with pytest.raises(NoChampionError, match=r"no champion to serve for 'credit_risk'"):
        build_champion_bento(settings, USE_CASE)


def test_no_shadow_answer_reaches_a_client_and_the_pairs_are_logged(served: Served) -> None:
    check_shadow(served.settings, served.url, served.log_path)


def test_a_canary_answers_its_share_stickily_and_a_degraded_one_is_stopped(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    check_canary(served.settings, served.url, capsys)
