"""Hyperparameter search for any model family: optuna TPE over stratified CV, with fold-level pruning."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from aimass_pipeline.core.scoring import higher_is_better, score
from aimass_pipeline.models.base import FeatureLayout, ModelFamily, validate_space

COMPLETE = "complete"
PRUNED = "pruned"


@dataclass(frozen=True)
class TrialOutcome:
    number: int
    params: dict[str, Any]
    score: float  # mean over the folds run; for a pruned trial, over the folds before it was stopped
    state: str  # COMPLETE or PRUNED
    seconds: float


@dataclass(frozen=True)
class TuningResult:
    best_params: dict[str, Any]  # the tuned parameters only; family.build merges them over the defaults
    best_score: float
    trials: list[TrialOutcome] = field(default_factory=list)
    n_pruned: int = 0
    seconds: float = 0.0


class TuningError(RuntimeError):
    """The search ended without a single trial that ran all its folds."""


def _check_inputs(
    layout: FeatureLayout,
    n_classes: int,
    X: pd.DataFrame,
    y: np.ndarray,
    n_trials: int,
    timeout_s: float,
    cv_folds: int,
) -> None:
    missing = [c for c in layout.columns if c not in X.columns]
    if missing:
        raise ValueError(f"the tuning frame lacks layout columns {missing}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if n_trials < 1 or timeout_s <= 0:
        raise ValueError(f"need n_trials >= 1 and timeout_s > 0, got {n_trials} and {timeout_s}")
    if cv_folds < 2:
        raise ValueError(f"cv_folds must be at least 2, got {cv_folds}")
    present = set(np.unique(y).tolist())
    if not present <= set(range(n_classes)):
        raise ValueError(f"y must hold class indices 0..{n_classes - 1}, got {sorted(present)}")
    smallest = int(np.bincount(y, minlength=n_classes).min())
    if smallest < cv_folds:
        raise ValueError(
            f"every class needs at least cv_folds={cv_folds} rows for stratified CV; one has {smallest}"
        )


def tune(
    family: ModelFamily,
    layout: FeatureLayout,
    n_classes: int,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    space: dict[str, dict[str, Any]],
    metric: str,
    n_trials: int,
    timeout_s: float,
    seed: int,
    cv_folds: int = 3,
    on_trial: Callable[[TrialOutcome], None] | None = None,
    fixed: dict[str, Any] | None = None,
) -> TuningResult:
    """Same data and seed give the same trials and best params, unless timeout_s cuts the search short.

    ``fixed`` holds the spec's non-tuned parameters: every trial builds {**fixed, **suggested}, so the study
    scores the model the final fit will build. ``best_params`` holds the suggested parameters only.
    """
    maximise = higher_is_better(metric)
    validate_space(space)
    y = np.asarray(y).astype(np.int64)
    _check_inputs(layout, n_classes, X, y, n_trials, timeout_s, cv_folds)
    # Folds are fixed once so every trial is judged on the same splits; comparisons are then paired.
    folds = list(StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed).split(X, y))

    def objective(trial: optuna.Trial) -> float:
        params = {**(fixed or {}), **family.suggest(trial, space)}
        scores: list[float] = []
        for step, (train, valid) in enumerate(folds):
            model = family.build(layout, n_classes, params, seed)
            model.fit(X.iloc[train], y[train])
            scores.append(score(metric, y[valid], model.predict_proba(X.iloc[valid])))
            # The running mean, not the fold's own score, so a trial is compared on what it has shown so far.
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    outcomes: list[TrialOutcome] = []

    def record(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        if frozen.state == optuna.trial.TrialState.COMPLETE:
            state, value = COMPLETE, float(frozen.value)
        elif frozen.state == optuna.trial.TrialState.PRUNED:
            steps = frozen.intermediate_values
            state, value = PRUNED, float(steps[max(steps)]) if steps else float("nan")
        else:
            return  # a failed trial re-raises from optimize, so the caller sees the exception itself
        seconds = frozen.duration.total_seconds() if frozen.duration else 0.0
        outcome = TrialOutcome(frozen.number, dict(frozen.params), value, state, seconds)
        outcomes.append(outcome)
        if on_trial is not None:
            on_trial(outcome)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    try:
        study = optuna.create_study(
            direction="maximize" if maximise else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            # Pruning from the first fold on, once three trials have set a baseline: a trial whose running
            # mean trails the median of earlier trials at the same fold stops there.
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        )
        study.optimize(objective, n_trials=n_trials, timeout=timeout_s, n_jobs=1, callbacks=[record])
    finally:
        optuna.logging.set_verbosity(verbosity)
    completed = [o for o in outcomes if o.state == COMPLETE]
    if not completed:
        raise TuningError(
            f"no {family.name} trial completed all {cv_folds} folds within {n_trials} trial(s) / {timeout_s}s "
            f"({len(outcomes)} pruned); raise the budget or narrow the space"
        )
    best = study.best_trial
    return TuningResult(
        best_params=dict(best.params),
        best_score=float(best.value),
        trials=outcomes,
        n_pruned=len(outcomes) - len(completed),
        seconds=time.perf_counter() - started,
    )
