"""A champion swap across a contract change: each version carries the contract it was trained under, and the
service vets a version against its served schema before it answers with it. A version that needs a column
the schema does not offer is refused (the old model keeps serving, ``/readyz`` and a metric say why); a
version that dropped a column serves, given only its own columns."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.version_contract import contract_tags
from aimass_pipeline.deployment.bento import build_champion_bento
from aimass_pipeline.serving.champion import ChampionFollower, load_version
from aimass_pipeline.serving.served_model import model_frame, record_frame
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.bento_server import SteadyLoad, bento_server, steady_loads
from aimass_pipeline_tests.serving.test_bento_service import (
    CONTRACT,
    USE_CASE,
    VALID,
    _crown,
    _prepared_settings,
    _register,
    _training_frame,
)

POLL_S = 1.0
ADDED = dataclasses.replace(CONTRACT, features=(*CONTRACT.features, Column("Extra", "float", min=0, max=10)))
DROPPED = dataclasses.replace(CONTRACT, features=tuple(c for c in CONTRACT.features if c.name != "Debt"))


def _train_under(contract: Contract, seed: int) -> Pipeline:
    frame, target = _training_frame(seed)
    frame = frame.assign(Extra=np.random.default_rng(seed).uniform(0, 10, len(frame)))[contract.feature_names]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), contract.numeric_features),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                contract.categorical_features,
            ),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))]).fit(frame, target)


def _register_under(settings: Settings, contract: Contract, seed: int) -> str:
    version = _register(settings, _train_under(contract, seed))
    for key, value in contract_tags(contract).items():
        MlflowClient().set_model_version_tag(USE_CASE, version, key, value)
    return version


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """v1 under the served contract, v2 under one with an added column, v3 under one with a dropped column."""
    with pytest.MonkeyPatch.context() as mp:
        settings = _prepared_settings(tmp_path_factory.mktemp("aimass-contract-swap"), mp)
        assert [_register_under(settings, c, seed) for seed, c in enumerate((CONTRACT, ADDED, DROPPED))] == [
            "1",
            "2",
            "3",
        ]
        _crown("1")
        yield settings


def test_the_follower_refuses_a_version_the_schema_cannot_feed(registry: Settings) -> None:
    uri = registry.mlflow_tracking_uri
    seen: list[tuple[str, str | None]] = []
    follower = ChampionFollower(
        load_version(uri, USE_CASE, "1"),
        uri,
        poll_s=60,
        offered=CONTRACT,
        record=VALID,
        on_refuse=lambda v, r: seen.append((v, r)),
    )
    _crown("2")
    assert not follower.poll_once() and follower.current.version == "1"
    assert "needs columns ['Extra']" in follower.refused["2"] and seen[0][0] == "2"
    assert not follower.poll_once()  # refused once, not reloaded at every poll
    assert len(seen) == 1

    _crown("3")
    assert follower.poll_once() and follower.current.version == "3"
    assert seen[-1] == ("2", None) and follower.refused == {}
    frame = model_frame(follower.current, record_frame(CONTRACT, [VALID]))
    assert "Debt" not in frame.columns and follower.current.model.predict_proba(frame).shape == (1, 2)


def test_a_swap_across_a_contract_change_never_fails_a_request(registry: Settings) -> None:
    _crown("1")
    build_champion_bento(registry, USE_CASE)
    env = registry.child_env() | {"AIMASS_CHAMPION_POLL_S": str(POLL_S), "AIMASS_PREDICTION_LOG": "off"}
    log = Path(registry.home) / "bentoml-serve-contract.log"
    with bento_server(registry, USE_CASE, log, env) as server:
        load = SteadyLoad(server.url, VALID, "/predict")
        with steady_loads(load):
            time.sleep(1)
            _crown("2")  # needs a column the served schema does not have
            refused_at = time.monotonic()
            deadline = refused_at + POLL_S + 20
            header = None
            while time.monotonic() < deadline and header is None:
                time.sleep(0.5)
                header = requests.get(f"{server.url}/readyz", timeout=10).headers.get(
                    "x-aimass-champion-refused"
                )
            assert header is not None and header.startswith("2: ") and "Extra" in header, header
            metrics = requests.get(f"{server.url}/metrics", timeout=10).text
            assert 'model_version="2",reason="contract"' in metrics
            refused_answers = [v for t, v in load.answers if t > refused_at]
            _crown("3")  # dropped a column: serves, given only its own columns
            swapped_at = time.monotonic()
            to_new = load.first_answer_from("3", swapped_at, timeout_s=POLL_S + 20)
            time.sleep(1)
        ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert load.failures == [], load.failures[:5]
    assert refused_answers and set(refused_answers) == {"1"}, refused_answers
    assert ready.status_code == 200 and "x-aimass-champion-refused" not in ready.headers
    print(f"v2 refused, {len(refused_answers)} answers by v1 meanwhile; v3 serving after {to_new:.2f} s")
