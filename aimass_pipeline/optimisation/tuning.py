"""Hyperparameter search for any model family: optuna TPE over stratified CV, with fold-level pruning."""

from __future__ import annotations

import multiprocessing
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
from aimass_pipeline.optimisation.studies import (
    StudyStore,
    keep_barrier,
    may_have_children,
    open_storage,
    prepare_study,
    start_barrier,
    work,
)

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


@dataclass(frozen=True)
class _Objective:
    """Picklable, so a worker process runs the very objective the caller built."""

    family: ModelFamily
    layout: FeatureLayout
    n_classes: int
    X: pd.DataFrame
    y: np.ndarray
    folds: list
    metric: str
    seed: int
    fixed: dict[str, Any]
    space: dict[str, dict[str, Any]]

    def __call__(self, trial: optuna.Trial) -> float:
        params = {**self.fixed, **self.family.suggest(trial, self.space)}
        scores: list[float] = []
        for step, (train, valid) in enumerate(self.folds):
            model = self.family.build(self.layout, self.n_classes, params, self.seed)
            model.fit(self.X.iloc[train], self.y[train])
            scores.append(score(self.metric, self.y[valid], model.predict_proba(self.X.iloc[valid])))
            # The running mean, not the fold's own score, so a trial is compared on what it has shown so far.
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))


def _sampler(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def _pruner() -> optuna.pruners.BasePruner:
    # Pruning from the first fold on, once three trials have set a baseline: a trial whose running
    # mean trails the median of earlier trials at the same fold stops there.
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


def _shared_worker(
    store: StudyStore, study_name: str, objective: _Objective, worker: int, start: Any = None
) -> int:
    """One worker on the shared study. Each seeds its sampler apart (seed + worker), or all would draw the
    same first candidates. ``start`` is a barrier: a fresh process needs seconds to import, and a worker
    that starts alone would drain a short queue before the others arrive."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(store)
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=_sampler(objective.seed + worker), pruner=_pruner()
    )
    start = start or start_barrier()
    if start is not None:
        start.wait()
    return work(study, storage, objective, store)


def _run_shared(
    store: StudyStore, study_name: str, direction: str, n_trials: int, workers: int, objective: _Objective,
    enqueue: list[dict] | None,
) -> optuna.Study:  # fmt: skip
    """Create the study once, then fan out: this process is worker 0, the others are fresh processes."""
    storage = open_storage(store)
    prepare_study(storage, study_name, direction, n_trials, enqueue)
    if workers == 1:
        _shared_worker(store, study_name, objective, 0)
        return optuna.load_study(study_name=study_name, storage=storage)
    # spawn, not fork: the caller (a Dagster step) holds threads and locks a forked child would inherit.
    context = multiprocessing.get_context("spawn")
    # A barrier goes to spawned workers only as they start (an initializer argument), not with a task.
    start = context.Barrier(workers, timeout=300)
    with may_have_children(), context.Pool(workers - 1, keep_barrier, (start,)) as pool:
        others = [
            pool.apply_async(_shared_worker, (store, study_name, objective, w)) for w in range(1, workers)
        ]
        _shared_worker(store, study_name, objective, 0, start)
        for other in others:
            other.get()  # re-raises a worker's exception here
    return optuna.load_study(study_name=study_name, storage=storage)


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
    storage: StudyStore | None = None,
    workers: int = 1,
    study_name: str | None = None,
    enqueue: list[dict[str, Any]] | None = None,
) -> TuningResult:
    """Same data and seed give the same trials and best params, unless timeout_s cuts the search short.

    ``fixed`` holds the spec's non-tuned parameters: every trial builds {**fixed, **suggested}, so the study
    scores the model the final fit will build. ``best_params`` holds the suggested parameters only.

    With ``storage``, ``workers`` processes share the study ``study_name`` there and its ``n_trials`` budget
    (``studies.py``); ``timeout_s`` then does not apply, and ``on_trial`` sees every trial once all finished.
    ``enqueue`` fixes the first trials' parameters.
    """
    if workers > 1 and storage is None:
        raise ValueError(f"{workers} workers need a shared study storage (AIMASS_TUNING_STORAGE)")
    if storage is not None and not study_name:
        raise ValueError("a shared study needs a study_name")
    maximise = higher_is_better(metric)
    validate_space(space)
    y = np.asarray(y).astype(np.int64)
    _check_inputs(layout, n_classes, X, y, n_trials, timeout_s, cv_folds)
    # Folds are fixed once so every trial is judged on the same splits; comparisons are then paired.
    folds = list(StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed).split(X, y))

    objective = _Objective(family, layout, n_classes, X, y, folds, metric, seed, fixed or {}, space)
    outcomes: list[TrialOutcome] = []

    def record(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        if frozen.state == optuna.trial.TrialState.COMPLETE:
            state, value = COMPLETE, float(frozen.value)
        elif frozen.state == optuna.trial.TrialState.PRUNED:
            steps = frozen.intermediate_values
            state, value = PRUNED, float(steps[max(steps)]) if steps else float("nan")
        else:
            # A failed trial re-raises from optimize (or a worker), so the caller sees the exception itself;
            # in a shared study a failed trial is a dead worker's, and its retry is another trial.
            return
        seconds = frozen.duration.total_seconds() if frozen.duration else 0.0
        outcome = TrialOutcome(frozen.number, dict(frozen.params), value, state, seconds)
        outcomes.append(outcome)
        if on_trial is not None:
            on_trial(outcome)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    try:
        direction = "maximize" if maximise else "minimize"
        if storage is not None:
            study = _run_shared(storage, study_name, direction, n_trials, workers, objective, enqueue)
            for frozen in sorted(study.trials, key=lambda t: t.number):
                record(study, frozen)
        else:
            study = optuna.create_study(direction=direction, sampler=_sampler(seed), pruner=_pruner())
            for params in enqueue or []:
                study.enqueue_trial(params)
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
