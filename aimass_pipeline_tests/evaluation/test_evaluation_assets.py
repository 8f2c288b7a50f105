"""candidate_evaluation and champion_model for real: candidates fitted on the fitting rows, the best chosen on
the selection rows, and a genuinely better second model promoted by the gate at the spec's own alpha."""

from __future__ import annotations

import dataclasses
import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, SourceAsset, materialize
from mlflow.tracking import MlflowClient

from aimass_pipeline.core import audit
from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.lineage import code_version
from aimass_pipeline.core.registry import champion_version, ensure_experiment, promote, register_version
from aimass_pipeline.core.signing import signed_pickle
from aimass_pipeline.core.splits import selection_split
from aimass_pipeline.core.version_contract import contract_tags, version_contract
from aimass_pipeline.evaluation.assets import build_evaluation, build_registration
from aimass_pipeline.models import get_family
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase
from aimass_pipeline.settings import Settings, load_settings
from aimass_pipeline.training.splits import split_frame
from aimass_pipeline.training.tracking import log_candidate
from aimass_pipeline_tests.conftest import CREDIT_RISK, CREDIT_SPEC

UC = UseCase(
    CREDIT_SPEC.model_copy(
        update={
            "families": {k: CREDIT_SPEC.families[k] for k in ("logreg", "random_forest")},
            "ensemble": False,
        }
    )
)
FEATURES = CREDIT_RISK.feature_names


def _logged(
    client: MlflowClient, root: str, family: str, params: dict, X: pd.DataFrame, y: np.ndarray, name: str
) -> dict:
    fam = get_family(family)
    model = fam.build(UC.layout, 2, params, 42).fit(X, y)
    run_id, model_uri = log_candidate(
        experiment_id=ensure_experiment(client, UC.name, root),
        run_name=name,
        model=model,
        params=params,
        metrics={"train_rows": float(len(X))},
        example=X.head(5),
        tags={"aimass.use_case": UC.name},
        code_version=code_version(),
        trusted_types=fam.skops_trusted_types,
        signing_key=load_settings().signing_key(),
    )
    return {
        "family": family,
        "model": model,
        "run_id": run_id,
        "model_uri": model_uri,
        "params": params,
        "compression": None,
        "compression_method": "none",
    }


def _world(settings: Settings, credit_frame: pd.DataFrame):
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    table = credit_frame.assign(
        **{LABEL: CREDIT_RISK.encode_target(credit_frame["Status"]), "batch_id": "b1"}
    ).dropna(subset=["Seniority"])
    training, holdout = split_frame(table, CREDIT_RISK.key)
    fitting, _ = selection_split(training, CREDIT_RISK.key)
    return training, holdout, fitting


def _materialize(
    settings: Settings, client: MlflowClient, training, holdout, fitting, candidates: dict | None = None
) -> tuple[dict, dict]:
    """Two real candidates fitted on the fitting rows, then candidate_evaluation and champion_model."""
    root = settings.mlflow_artifacts_uri
    X, y = fitting[FEATURES], fitting[LABEL].to_numpy()
    candidates = candidates or {
        "logreg_candidate": _logged(client, root, "logreg", {"C": 0.5}, X, y, "logreg"),
        "random_forest_candidate": _logged(
            client,
            root,
            "random_forest",
            {"n_estimators": 40, "min_samples_leaf": 20, "max_depth": 2},
            X,
            y,
            "rf",
        ),
    }
    lake = Lake(settings.lake_url)
    for name, value in candidates.items():
        # Signed as the IO manager signs what it stores: it refuses an unsigned pickle.
        path = f"assets/{UC.name}/{name}.pkl"
        lake.write_bytes(signed_pickle(value, settings.signing_key(), path), *path.split("/"))
    lake.write_parquet(training, "assets", UC.name, "training_set.parquet")
    lake.write_parquet(holdout, "assets", UC.name, "frozen_holdout.parquet")
    resource = LakeResource(url=settings.lake_url)
    sources = [SourceAsset(UC.key(n)) for n in (*UC.candidates, "training_set", "frozen_holdout")]
    with DagsterInstance.get() as instance:
        result = materialize(
            [*build_evaluation(UC), *build_registration(UC), *sources],
            resources={
                "lake": resource,
                "mlflow": MlflowResource(tracking_uri=settings.mlflow_tracking_uri, artifact_root=root),
                "io_manager": LakeIOManager(lake=resource),
            },
            instance=instance,
        )
    assert result.success
    return (
        result.output_for_node(f"{UC.name}__candidate_evaluation"),
        result.output_for_node(f"{UC.name}__champion_model"),
    )


def _crown_no_skill(client: MlflowClient, root: str, fitting: pd.DataFrame, contract: Contract) -> None:
    """Version 1: a model that learnt from shuffled labels, trained under ``contract``."""
    X = fitting.assign(Extra=1.0)[contract.feature_names]
    shuffled = np.random.default_rng(0).permutation(fitting[LABEL].to_numpy())
    layout = dataclasses.replace(
        UC.layout, numeric=contract.numeric_features, categorical=contract.categorical_features
    )
    fam = get_family("logreg")
    model = fam.build(layout, 2, {"C": 0.5}, 42).fit(X, shuffled)
    run_id, model_uri = log_candidate(
        experiment_id=ensure_experiment(client, UC.name, root),
        run_name="champion",
        model=model,
        params={},
        metrics={},
        example=X.head(5),
        tags={"aimass.use_case": UC.name},
        code_version=code_version(),
        trusted_types=fam.skops_trusted_types,
        signing_key=load_settings().signing_key(),
    )
    first = register_version(client, UC.name, model_uri, run_id, contract_tags(contract), "v1")
    promote(client, UC.name, str(first.version))


def test_a_better_second_model_passes_the_real_gate(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    settings = aimass_home
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    training, holdout, fitting = _world(settings, credit_frame)
    _crown_no_skill(client, settings.mlflow_artifacts_uri, fitting, CREDIT_RISK)
    evaluation, champion = _materialize(settings, client, training, holdout, fitting)
    chosen = evaluation["selection_scores"]
    assert set(chosen) == {"logreg", "random_forest"}
    assert evaluation["best_family"] == max(chosen, key=chosen.get)
    decision = champion["decision"]
    assert decision["alpha"] == CREDIT_SPEC.gate.alpha == 0.05 and decision["test"] == "delong"
    assert champion["promoted"], decision["reason"]
    assert decision["p_value"] < 0.05 and decision["ci_low"] > 0 and decision["n"] == len(holdout)
    assert str(champion_version(client, UC.name).version) == champion["version"] == "2"
    # The version carries the contract it was trained under.
    assert version_contract(client.get_model_version(UC.name, "2").tags) == CREDIT_RISK
    # The decision and its figures are on the audit trail: `aimass history --at` answers why v2 is champion.
    [gate] = [e for e in audit.read(Lake(settings.lake_url), UC.name) if e["action"] == audit.GATE]
    assert (gate["who"], gate["evidence"]["version"], gate["evidence"]["replaced"]) == ("gate", "2", "1")
    assert gate["evidence"]["p_value"] == decision["p_value"] and gate["evidence"]["promote"] is True
    assert audit.champion_at([gate], dt.datetime.now(dt.UTC))["version"] == "2"


ADDED = dataclasses.replace(
    CREDIT_RISK, features=(*CREDIT_RISK.features, Column("Extra", "float", min=0, max=10))
)
DROPPED = dataclasses.replace(
    CREDIT_RISK, features=tuple(c for c in CREDIT_RISK.features if c.name != "Debt")
)


@pytest.mark.parametrize(
    "champion_contract",
    [ADDED, DROPPED],
    ids=["champion-needs-a-dropped-column", "champion-lacks-a-new-column"],
)
def test_the_gate_across_a_contract_change(
    aimass_home: Settings, credit_frame: pd.DataFrame, champion_contract: Contract
) -> None:
    """The champion was trained under another contract: scored on its own columns when the holdout has them
    all, else the gate refuses with the reason rather than failing the run."""
    settings = aimass_home
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    training, holdout, fitting = _world(settings, credit_frame)
    _crown_no_skill(client, settings.mlflow_artifacts_uri, fitting, champion_contract)
    _, champion = _materialize(settings, client, training, holdout, fitting)
    decision = champion["decision"]
    if champion_contract is ADDED:
        assert not champion["promoted"] and decision["test"] == "incomparable"
        assert "version 1" in decision["reason"] and "needs columns ['Extra']" in decision["reason"]
        assert "aimass promote credit_risk <version>" in decision["reason"]
        assert str(champion_version(client, UC.name).version) == "1"
    else:
        assert champion["promoted"] and decision["test"] == "delong", decision["reason"]
        assert decision["champion"] < 0.6 < decision["challenger"]


@pytest.mark.parametrize("crash", ["after-registering", "after-promoting"])
def test_a_retried_registration_registers_nothing_twice(
    aimass_home: Settings, credit_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    """champion_model dies half-way (an outage it could not ride out, the worker killed); the retry, given the
    same chosen candidate, finds the version the first attempt registered, judges it against the same champion
    and finishes."""
    import aimass_pipeline.evaluation.assets as evaluation_assets

    settings = aimass_home
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    training, holdout, fitting = _world(settings, credit_frame)
    _crown_no_skill(client, settings.mlflow_artifacts_uri, fitting, CREDIT_RISK)
    X, y = fitting[FEATURES], fitting[LABEL].to_numpy()
    root = settings.mlflow_artifacts_uri
    candidates = {
        "logreg_candidate": _logged(client, root, "logreg", {"C": 0.5}, X, y, "logreg"),
        "random_forest_candidate": _logged(
            client,
            root,
            "random_forest",
            {"n_estimators": 40, "min_samples_leaf": 20, "max_depth": 2},
            X,
            y,
            "rf",
        ),
    }
    target = "render_model_card" if crash == "after-registering" else "champion_version"
    real, calls = getattr(evaluation_assets, target), []

    def dies_once(*args, **kwargs):
        calls.append(1)
        # champion_version is called before the gate and after the promotion: die on the second.
        if len(calls) == (1 if target == "render_model_card" else 2):
            raise RuntimeError("run worker died half-way")  # not an outage: the step does not retry itself
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation_assets, target, dies_once)
    with pytest.raises(Exception, match="run worker died half-way"):
        _materialize(settings, client, training, holdout, fitting, candidates)
    assert [str(v.version) for v in client.search_model_versions(f"name='{UC.name}'")] == ["2", "1"]
    calls.append(1)  # the retry's calls all succeed

    _, champion = _materialize(settings, client, training, holdout, fitting, candidates)

    versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{UC.name}'"))
    assert versions == ["1", "2"], f"registered twice: {versions}"
    assert champion["version"] == "2" and champion["promoted"], champion["decision"]["reason"]
    assert champion["decision"]["champion"] < 0.6  # judged against version 1, not against itself
    assert str(champion_version(client, UC.name).version) == "2"


def test_a_database_outage_inside_registration_is_retried_within_the_run(
    aimass_home: Settings, credit_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost PostgreSQL connection half-way through champion_model: the step retries after a wait (Dagster's
    run retry would not, it takes an asset failure for a data failure) and the run completes, one version."""
    import psycopg2

    import aimass_pipeline.evaluation.assets as evaluation_assets
    import aimass_pipeline.orchestration.outages as outages
    from aimass_pipeline_tests.conftest import free_port

    settings = aimass_home
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    training, holdout, fitting = _world(settings, credit_frame)
    _crown_no_skill(client, settings.mlflow_artifacts_uri, fitting, CREDIT_RISK)
    try:  # the error a restarting server gives, from a real connection attempt
        psycopg2.connect(host="127.0.0.1", port=free_port(), user="postgres", connect_timeout=2)
    except psycopg2.OperationalError as exc:
        outage = exc
    real, calls = evaluation_assets.render_model_card, []

    def dies_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("could not write the model card") from outage
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation_assets, "render_model_card", dies_once)
    monkeypatch.setattr(outages, "STORE_RETRY_WAIT_S", 0.1)
    _, champion = _materialize(settings, client, training, holdout, fitting)
    assert len(calls) == 2 and champion["promoted"] and champion["version"] == "2"
    assert sorted(str(v.version) for v in client.search_model_versions(f"name='{UC.name}'")) == ["1", "2"]


def test_a_data_error_is_not_taken_for_an_outage() -> None:
    from aimass_pipeline.core.outages import is_store_outage

    assert not is_store_outage(ValueError("column 'Age' holds text"))
    assert is_store_outage(RuntimeError("x").with_traceback(None)) is False
    wrapped = RuntimeError("mlflow failed")
    wrapped.__cause__ = ConnectionError("Connection refused")
    assert is_store_outage(wrapped)
