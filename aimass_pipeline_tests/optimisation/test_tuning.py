from typing import Any

import numpy as np
import optuna
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from aimass_pipeline.models import get_family, suggest_from_space
from aimass_pipeline.optimisation.tuning import COMPLETE, PRUNED, TrialOutcome, TuningError, tune
from aimass_pipeline_tests.models.test_families import CREDIT, credit_sample

LOGREG_SPACE = {
    "C": {"type": "float", "low": 1e-4, "high": 10.0, "log": True},
    "class_weight": {"type": "categorical", "choices": [None, "balanced"]},
    "max_iter": {"type": "int", "low": 200, "high": 1000, "step": 200},
}


def run(n_trials: int, seed: int = 3, metric: str = "roc_auc", **kwargs: Any):
    X, y = credit_sample()
    return tune(
        get_family("logreg"),
        CREDIT,
        2,
        X,
        y,
        space=kwargs.pop("space", LOGREG_SPACE),
        metric=metric,
        n_trials=n_trials,
        timeout_s=120,
        seed=seed,
        **kwargs,
    )


def test_two_trial_budget_stays_in_the_space_and_reports_each_trial() -> None:
    seen: list[TrialOutcome] = []
    result = run(2, on_trial=seen.append)
    assert [o.number for o in seen] == [0, 1]
    assert result.trials == seen
    assert all(o.state == COMPLETE and 0.5 < o.score <= 1.0 and o.seconds > 0 for o in seen)
    params = result.best_params
    assert set(params) == set(LOGREG_SPACE)
    assert 1e-4 <= params["C"] <= 10.0
    assert params["class_weight"] in (None, "balanced")
    assert params["max_iter"] in (200, 400, 600, 800, 1000)
    assert result.best_score == max(o.score for o in seen)
    assert result.n_pruned == 0 and result.seconds > 0


def test_same_data_and_seed_give_the_same_search() -> None:
    first, second = run(4, seed=11), run(4, seed=11)
    assert first.best_params == second.best_params
    assert [(o.params, o.score) for o in first.trials] == [(o.params, o.score) for o in second.trials]
    other = run(4, seed=12)
    assert [o.params for o in other.trials] != [o.params for o in first.trials]


def test_fixed_params_reach_every_trial_but_not_best_params() -> None:
    built: list[dict] = []
    family = get_family("logreg")

    class Spy:
        name, supports = family.name, family.supports
        serialization, skops_trusted_types = family.serialization, family.skops_trusted_types
        default_params, suggest = family.default_params, family.suggest

        def build(self, layout: Any, n_classes: int, params: dict, seed: int) -> BaseEstimator:
            built.append(params)
            return family.build(layout, n_classes, params, seed)

    X, y = credit_sample()
    result = tune(Spy(), CREDIT, 2, X, y, space={"C": LOGREG_SPACE["C"]}, metric="roc_auc", n_trials=2,
                  timeout_s=60, seed=0, fixed={"class_weight": "balanced", "C": 99.0})  # fmt: skip
    assert len(built) == 6  # 2 trials x 3 folds
    assert all(p["class_weight"] == "balanced" and p["C"] != 99.0 for p in built)  # the space wins over fixed
    assert set(result.best_params) == {"C"}


def test_median_pruner_stops_poor_trials_after_a_fold() -> None:
    # Tiny C starves the model: its log loss stays near log(2), far above the median of better trials.
    space = {"C": {"type": "float", "low": 1e-6, "high": 10.0, "log": True}}
    result = run(12, seed=0, metric="log_loss", space=space)
    pruned = [o for o in result.trials if o.state == PRUNED]
    assert result.n_pruned == len(pruned) > 0
    best_complete = min(o.score for o in result.trials if o.state == COMPLETE)
    assert result.best_score == best_complete  # minimised, and pruned trials never win
    assert all(o.score > best_complete for o in pruned)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "non-empty mapping"),
        ({"C": {"type": "float", "low": 0, "high": 1, "log": True}}, r"'C': a log scale needs low > 0"),
        ({"C": {"type": "float", "low": 2, "high": 1}}, r"'C': low 2 is above high 1"),
        ({"C": {"type": "double", "low": 0.1, "high": 1}}, r"'C': type must be one of"),
        ({"C": {"type": "float", "low": "a", "high": 1}}, r"'C': 'low' and 'high' must be finite numbers"),
        (
            {"max_iter": {"type": "int", "low": 1.5, "high": 9}},
            r"'max_iter': an int range needs whole-number",
        ),
        ({"C": {"type": "float", "low": 0.1, "high": 1, "lg": True}}, r"'C': unexpected key\(s\) \['lg'\]"),
        (
            {"class_weight": {"type": "categorical", "choices": []}},
            r"'class_weight': 'choices' must be a non-empty",
        ),
        ({"class_weight": {"type": "categorical", "choices": [{"a": 1}]}}, "choices must be scalars"),
        ({"C": [0.1, 1]}, r"'C': spec must be a mapping"),
        ({"penalty": {"type": "categorical", "choices": ["l1"]}}, r"unknown parameter\(s\) \['penalty'\]"),
    ],
)
def test_bad_search_spaces_name_the_parameter(space: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(1, space=space)


def test_bad_arguments_fail_before_any_fit() -> None:
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        run(1, metric="auc")
    with pytest.raises(ValueError, match="cv_folds must be at least 2"):
        run(1, cv_folds=1)
    X, y = credit_sample()
    with pytest.raises(ValueError, match=r"lacks layout columns \['Income'\]"):
        tune(get_family("logreg"), CREDIT, 2, X.drop(columns="Income"), y, space=LOGREG_SPACE,
             metric="roc_auc", n_trials=1, timeout_s=10, seed=0)  # fmt: skip


def test_suggest_from_space_uses_each_type() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        params = suggest_from_space(
            study.ask(), {**LOGREG_SPACE, "tol": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.1}}
        )
        assert isinstance(params["max_iter"], int) and params["max_iter"] % 200 == 0
        assert isinstance(params["C"], float)
        assert round(params["tol"] * 10, 6) in (1, 2, 3, 4, 5)


class _GivesUp(ClassifierMixin, BaseEstimator):
    def fit(self, X: Any, y: Any) -> "_GivesUp":
        raise optuna.TrialPruned()


class _AlwaysPrunedFamily:
    name = "gives_up"
    supports = frozenset({"tabular"})
    serialization = "skops"
    skops_trusted_types: list[str] = []

    def default_params(self, layout: Any, n_classes: int) -> dict:
        return {}

    def suggest(self, trial: optuna.Trial, space: dict) -> dict:
        return suggest_from_space(trial, space)

    def build(self, layout: Any, n_classes: int, params: dict, seed: int) -> BaseEstimator:
        return _GivesUp()


def test_no_completed_trial_is_a_clear_error() -> None:
    X, y = credit_sample()
    with pytest.raises(TuningError, match="no gives_up trial completed all 3 folds"):
        tune(_AlwaysPrunedFamily(), CREDIT, 2, X, y, space={"a": {"type": "int", "low": 1, "high": 2}},
             metric="roc_auc", n_trials=2, timeout_s=10, seed=0)  # fmt: skip


def test_labels_must_match_n_classes() -> None:
    X, y = credit_sample()
    with pytest.raises(ValueError, match=r"class indices 0..1"):
        tune(get_family("logreg"), CREDIT, 2, X, np.where(y == 1, 2, 0), space=LOGREG_SPACE,
             metric="roc_auc", n_trials=1, timeout_s=10, seed=0)  # fmt: skip
