"""candidate_evaluation and champion_model for real: candidates fitted on the fitting rows, the best chosen on
the selection rows, and a genuinely better second model promoted by the gate at the spec's own alpha."""

from __future__ import annotations

import pickle

import mlflow
import numpy as np
import pandas as pd
from dagster import DagsterInstance, SourceAsset, materialize
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.lineage import code_version
from aimass_pipeline.core.registry import champion_version, ensure_experiment, promote, register_version
from aimass_pipeline.core.splits import selection_split
from aimass_pipeline.evaluation.assets import build_evaluation, build_registration
from aimass_pipeline.models import get_family
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase
from aimass_pipeline.settings import Settings
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


def test_a_better_second_model_passes_the_real_gate(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    settings = aimass_home
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    root = settings.mlflow_artifacts_uri
    table = credit_frame.assign(
        **{LABEL: CREDIT_RISK.encode_target(credit_frame["Status"]), "batch_id": "b1"}
    ).dropna(subset=["Seniority"])
    training, holdout = split_frame(table, CREDIT_RISK.key)
    fitting, selection = selection_split(training, CREDIT_RISK.key)
    X, y = fitting[FEATURES], fitting[LABEL].to_numpy()
    # The champion learnt from shuffled labels: no skill, so the real model must beat it with evidence.
    shuffled = np.random.default_rng(0).permutation(y)
    old = _logged(client, root, "logreg", {"C": 0.5}, X, shuffled, "champion")
    first = register_version(client, UC.name, old["model_uri"], old["run_id"], {}, "v1")
    promote(client, UC.name, str(first.version))
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
    lake = Lake(settings.lake_url)
    for name, value in candidates.items():
        lake.write_bytes(pickle.dumps(value), "assets", UC.name, f"{name}.pkl")
    lake.write_parquet(training, "assets", UC.name, "training_set.parquet")
    lake.write_parquet(holdout, "assets", UC.name, "frozen_holdout.parquet")
    resource = LakeResource(url=settings.lake_url)
    sources = [SourceAsset(UC.key(n)) for n in (*UC.candidates, "training_set", "frozen_holdout")]
    with DagsterInstance.get() as instance:
        result = materialize(
            [*build_evaluation(UC), *build_registration(UC), *sources],
            resources={
                "lake": resource,
                "mlflow": MlflowResource(
                    tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifacts_uri
                ),
                "io_manager": LakeIOManager(lake=resource),
            },
            instance=instance,
        )
    assert result.success
    evaluation = result.output_for_node(f"{UC.name}__candidate_evaluation")
    champion = result.output_for_node(f"{UC.name}__champion_model")
    chosen = evaluation["selection_scores"]
    assert set(chosen) == {"logreg", "random_forest"}
    assert evaluation["best_family"] == max(chosen, key=chosen.get)
    decision = champion["decision"]
    assert decision["alpha"] == CREDIT_SPEC.gate.alpha == 0.05 and decision["test"] == "delong"
    assert champion["promoted"], decision["reason"]
    assert decision["p_value"] < 0.05 and decision["ci_low"] > 0 and decision["n"] == len(holdout)
    assert str(champion_version(client, UC.name).version) == champion["version"] == "2"
