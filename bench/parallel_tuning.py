"""Tuning trials per minute with one worker and with two on one shared optuna study (issue 12, goal >= 1.6x).

The real credit data (4,454 rows), xgboost on one thread per model, 3-fold CV, the same budget for both;
the study lives in a fresh SQLite file each time. Two workers are this process plus one spawned process; the
spawned one's start-up (imports, ~3-5 s) is inside the measured time.

    .venv/bin/python -m bench.parallel_tuning [--family xgboost] [--trials 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from aimass_pipeline.models import get_family
from aimass_pipeline.optimisation.studies import StudyStore
from aimass_pipeline.optimisation.tuning import tune
from bench.model_families import TUNING_SPACES, credit_risk


def _run(family_name: str, trials: int, workers: int, folder: Path) -> tuple[float, float, int]:
    layout, X, y = credit_risk()
    family = get_family(family_name)
    fixed = family.default_params(layout, 2)
    started = time.perf_counter()
    result = tune(
        family, layout, 2, X, y, space=TUNING_SPACES[family_name], metric="roc_auc", n_trials=trials,
        timeout_s=3600, seed=0, fixed=fixed, storage=StudyStore(f"sqlite:///{folder / f'w{workers}.db'}"),
        workers=workers, study_name=f"bench-{workers}",
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return seconds, result.best_score, len(result.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="xgboost", choices=sorted(TUNING_SPACES))
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as folder:
        rates = {}
        for workers in (1, args.workers):
            seconds, best, done = _run(args.family, args.trials, workers, Path(folder))
            rates[workers] = 60 * done / seconds
            print(
                f"{args.family}: {workers} worker(s): {done} trials in {seconds:.1f}s = "
                f"{rates[workers]:.1f} trials/min, best CV roc_auc {best:.4f}"
            )
    print(f"speed-up with {args.workers} workers: {rates[args.workers] / rates[1]:.2f}x (goal >= 1.6x)")


if __name__ == "__main__":
    main()
