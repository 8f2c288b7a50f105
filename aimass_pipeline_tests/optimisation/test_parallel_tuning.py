"""Several worker processes share one optuna study in an RDB: the budget is spent exactly, once."""

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from aimass_pipeline.optimisation.studies import WORKER_ATTR, StudyStore, open_storage, prepare_study
from aimass_pipeline.optimisation.tuning import COMPLETE, PRUNED
from aimass_pipeline_tests.optimisation.test_tuning import run

# Six fixed trials, so the parallel and the serial search judge the same candidates whatever the timing.
FIXED = [
    {"C": c, "class_weight": cw, "max_iter": 200}
    for c, cw in [(1e-4, None), (0.05, "balanced"), (1.0, None), (3.0, "balanced"), (1e-3, None), (0.3, None)]
]


def store(tmp_path: Path, **kwargs: int) -> StudyStore:
    return StudyStore(f"sqlite:///{tmp_path / 'studies.db'}", **kwargs)


def test_two_workers_spend_exactly_the_budget_and_find_the_serial_best(tmp_path: Path) -> None:
    where = store(tmp_path)
    parallel = run(6, storage=where, workers=2, study_name="credit-logreg", enqueue=FIXED)
    serial = run(6, enqueue=FIXED)
    assert sorted(o.number for o in parallel.trials) == list(range(6)), "trial numbers are not 0..5 once each"
    study = optuna.load_study(study_name="credit-logreg", storage=where.url)
    assert len(study.trials) == 6 and all(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials
    )
    pids = {t.user_attrs[WORKER_ATTR] for t in study.trials}
    assert len(pids) == 2, f"the trials ran in {len(pids)} process(es), not 2"
    assert parallel.best_params == serial.best_params
    assert parallel.best_score == pytest.approx(serial.best_score)


def test_sampled_trials_share_the_budget_too(tmp_path: Path) -> None:
    result = run(5, storage=store(tmp_path), workers=2, study_name="sampled")
    assert sorted(o.number for o in result.trials) == list(range(5))
    assert all(o.state in (COMPLETE, PRUNED) for o in result.trials)
    # Each worker seeds its own sampler apart, so two workers do not draw the same first candidate.
    assert len({tuple(sorted(o.params.items(), key=str)) for o in result.trials}) == 5


def test_a_trial_whose_worker_died_is_retried_and_the_budget_holds(tmp_path: Path) -> None:
    where = store(tmp_path, heartbeat_s=1, grace_s=2)
    storage = open_storage(where)
    assert prepare_study(storage, "crash", "maximize", 4, enqueue=FIXED[:4])
    assert not prepare_study(storage, "crash", "maximize", 4), "a second prepare must load, not re-queue"
    # A worker claimed trial 0, beat once, and died (SIGKILL leaves exactly this behind).
    study = optuna.load_study(study_name="crash", storage=storage)
    dead = study.trials[0]
    assert storage.set_trial_state_values(dead._trial_id, state=TrialState.RUNNING)
    storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)  # the grace period, then the trial is stale
    result = run(4, storage=where, workers=2, study_name="crash")
    trials = optuna.load_study(study_name="crash", storage=where.url).trials
    assert trials[0].state == TrialState.FAIL
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 4 == len(result.trials), f"{len(done)} trials finished, budget 4"
    retried = [t for t in done if t.system_attrs.get("failed_trial") == 0]
    assert len(retried) == 1 and retried[0].params == FIXED[0]


def test_parallel_tuning_without_a_storage_fails_loudly() -> None:
    with pytest.raises(ValueError, match="2 workers need a shared study storage"):
        run(2, workers=2)
    with pytest.raises(ValueError, match="not an optuna RDB URL"):
        StudyStore("journal:///tmp/x.log")


def test_scale_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from aimass_pipeline.settings.scale import load_scale_settings

    monkeypatch.setenv("AIMASS_TUNING_WORKERS", "2")
    monkeypatch.delenv("AIMASS_TUNING_STORAGE", raising=False)
    with pytest.raises(ValueError, match="AIMASS_TUNING_WORKERS=2 needs AIMASS_TUNING_STORAGE"):
        load_scale_settings()
    monkeypatch.setenv("AIMASS_TUNING_WORKERS", "two")
    with pytest.raises(ValueError, match="AIMASS_TUNING_WORKERS must be a whole number, got 'two'"):
        load_scale_settings()
    monkeypatch.setenv("AIMASS_TUNING_WORKERS", "2")
    monkeypatch.setenv("AIMASS_TUNING_STORAGE", "sqlite:///x.db")
    monkeypatch.setenv("AIMASS_EXECUTOR", "ray")
    with pytest.raises(ValueError, match="AIMASS_EXECUTOR must be one of in_process, celery, k8s, got 'ray'"):
        load_scale_settings()


def test_two_workers_share_a_study_in_postgresql() -> None:
    from aimass_pipeline_tests.postgres import pg_server, scratch_database

    server = pg_server()
    with scratch_database() as db:
        url = f"postgresql+psycopg2://{server['user']}@{server['host']}:{server['port']}/{db}"
        result = run(4, storage=StudyStore(url), workers=2, study_name="pg", enqueue=FIXED[:4])
        storage = open_storage(StudyStore(url))
        trials = optuna.load_study(study_name="pg", storage=storage).trials
        storage.engine.dispose()
        assert sorted(o.number for o in result.trials) == list(range(4))
        assert len(trials) == 4 and len({t.user_attrs[WORKER_ATTR] for t in trials}) == 2


def _tune_in_a_pool_child(url: str) -> list[int]:
    result = run(4, storage=StudyStore(url), workers=2, study_name="in-celery", enqueue=FIXED[:4])
    return sorted(o.number for o in result.trials)


def test_a_celery_pool_process_can_fan_out(tmp_path: Path) -> None:
    """A tuning step on a Celery worker runs in a daemonic prefork child (billiard), which multiprocessing
    refuses to give children of its own."""
    import billiard

    with billiard.get_context("spawn").Pool(1) as pool:
        numbers = pool.apply(_tune_in_a_pool_child, (store(tmp_path).url,))
    assert numbers == [0, 1, 2, 3]
