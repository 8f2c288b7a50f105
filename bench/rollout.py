"""Rollout cost and speed: the AIMass endpoint with no shadow, a 100 % shadow and a 10 % canary, side by side in
one run at the ``bench.serving`` load (its 200-tree XGBoost on 30 float features, single-row requests); then the
canary's decision latency: labelled requests until the mSPRT decides, for given effects (simulated, seeded).

Two registered versions (seeds 7 and 8) in a temporary MLflow store, version 1 the champion in the bento; the
service follows the lake's serving state every second. Per mode: requests/s, p50/p99 latency, server CPU per
request and the server's CPU in % of one core, at concurrency 1 and 32; for the shadow, how many of the answered
requests it scored (it drops work rather than slow a request down).

    .venv/bin/python -m bench.rollout [--duration 10] [--reps 200]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import serving

KEY = "aimass-bench-signing-key"
# "none" again last: how much the shared machine drifted during the run.
MODES = ("none", "shadow 100 %", "canary 10 %", "none (again)")


def _register(work: Path, uri: str) -> None:
    import mlflow
    import mlflow.sklearn
    from xgboost import XGBClassifier

    from aimass_pipeline.core.registry import ensure_store, registry_client, sign_logged_model

    ensure_store(uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench-rollout", artifact_location=(work / "artifacts").as_uri())
    x, y = serving._data(5000, serving.SEED)
    for seed in (serving.SEED, serving.SEED + 1):
        model = XGBClassifier(n_estimators=200, max_depth=6, random_state=seed, n_jobs=1, subsample=0.8)
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                model.fit(x, y),
                name="model",
                registered_model_name=serving.USE_CASE,
                serialization_format="cloudpickle",
                input_example=x.head(5),
                pip_requirements=["xgboost"],
            )
            sign_logged_model(info.model_id, info.model_uri, KEY)
    registry_client(uri).set_registered_model_alias(serving.USE_CASE, "champion", "1")


def _server(work: Path, uri: str) -> tuple[subprocess.Popen, int, Path]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "BENTOML_DO_NOT_TRACK": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(serving.ROOT),
        "BENTOML_HOME": str(work / "bentoml"),
        "AIMASS_HOME": str(work / "home"),
        "AIMASS_LAKE_URL": (work / "lake").as_uri(),
        "MLFLOW_TRACKING_URI": uri,
        "AIMASS_CHAMPION_POLL_S": "1",
        "AIMASS_SIGNING_KEY": KEY,
    }
    code = (
        "import sys, bentoml; bentoml.mlflow.import_model(sys.argv[1], sys.argv[2], metadata="
        "{'registered_model_name': sys.argv[3], 'model_version': '1', 'threshold': 0.5})"
    )
    subprocess.run(
        [sys.executable, "-c", code, serving.MODEL_TAG, f"models:/{serving.USE_CASE}/1", serving.USE_CASE],
        env=env,
        check=True,
    )
    args = work / "bento_args.json"
    args.write_text(
        json.dumps({"use_case": serving.USE_CASE, "model_tag": serving.MODEL_TAG, "spec": serving._spec()})
    )
    port = serving.PORT_BASE + 5
    command = [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        serving.SERVICE,
        "--arg-file",
        str(args),
    ]
    log = work / "aimass.log"
    proc = serving._start(
        "aimass", command + ["--host", "127.0.0.1", "--port", str(port)], env, port, "/readyz", log
    )
    return proc, port, log


def _set_mode(lake, mode: str, log: Path) -> None:
    from aimass_pipeline.core import rollout

    state = rollout.read_state(lake, serving.USE_CASE)
    if state.shadow is not None:
        rollout.stop_shadow(lake, serving.USE_CASE, "bench")
    if state.canary is not None:
        rollout.end_canary(lake, serving.USE_CASE, "stop", "bench")
    if mode.startswith("shadow"):
        rollout.start_shadow(lake, serving.USE_CASE, "2", 100.0, "1")
    elif mode.startswith("canary"):
        rollout.start_canary(lake, serving.USE_CASE, "2", 10.0, "1", rollout.DecisionRule())
    deadline = time.monotonic() + 60
    while not mode.startswith("none") and "loaded version 2" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"version 2 never loaded; see {log}")
        time.sleep(0.5)
    time.sleep(3)  # every worker has polled the new state


def _shadow_rows(lake) -> int:
    from aimass_pipeline.rollout.logs import SHADOW_PREFIX, read_log

    return len(
        read_log(lake.fs, lake.root, serving.USE_CASE, "2000-01-01T00:00:00+00:00", prefix=SHADOW_PREFIX)
    )


def _decision_latency(reps: int) -> None:
    from aimass_pipeline.rollout.sequential import simulate_decisions

    print(
        "\ncanary decision latency (mSPRT, alpha 0.05, min effect 0.05, 10 % share, error-rate loss, "
        f"{reps} seeded repetitions, look every 10 canary labels, at most 2,000):"
    )
    print(
        f"{'champion err':>12} {'canary err':>10} {'promoted':>9} {'stopped':>8} {'undecided':>9} "
        f"{'median labelled':>16} {'p90 labelled':>13}"
    )
    for a, b in ((0.20, 0.20), (0.20, 0.15), (0.20, 0.12), (0.20, 0.25), (0.20, 0.30)):
        decided, seen = simulate_decisions(np.random.default_rng(15), reps, a, b, 0.1, 0.05, 0.05, 2000)
        at = seen[decided != 0]
        med, p90 = (f"{np.median(at):,.0f}", f"{np.quantile(at, 0.9):,.0f}") if len(at) else ("-", "-")
        print(
            f"{a:>12.2f} {b:>10.2f} {np.mean(decided == 1):>9.1%} {np.mean(decided == -1):>8.1%} "
            f"{np.mean(decided == 0):>9.1%} {med:>16} {p90:>13}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--reps", type=int, default=200, help="simulated canaries per effect")
    parser.add_argument("--skip-serving", action="store_true", help="only the decision latency")
    opts = parser.parse_args()
    if not opts.skip_serving:
        from aimass_pipeline.core.lake import Lake

        with tempfile.TemporaryDirectory(prefix="aimass-bench-rollout-") as tmp:
            work = Path(tmp)
            uri = f"sqlite:///{work / 'mlflow.db'}"
            _register(work, uri)
            proc, port, log = _server(work, uri)
            lake = Lake((work / "lake").as_uri())
            frame = serving._data(3000, serving.SEED + 1)[0]
            singles, _ = serving._bodies("aimass", frame)
            requests = [serving._request("/predict", b) for b in singles]
            results = []
            try:
                for mode in MODES:
                    _set_mode(lake, mode, log)
                    before = _shadow_rows(lake)
                    for concurrency in (1, 32):
                        serving._phase(port, proc.pid, requests, concurrency, 2.0)  # warm-up
                        row = serving._phase(port, proc.pid, requests, concurrency, opts.duration)
                        results.append((mode, concurrency, row))
                    if mode.startswith("shadow"):
                        time.sleep(6)  # one flush of the shadow log
                        answered = sum(r["rps"] for m, _, r in results if m == mode) * opts.duration
                        print(
                            f"shadow scored {_shadow_rows(lake) - before:,} rows for ~{answered:,.0f} answered "
                            "(warm-ups included in the rows)"
                        )
            finally:
                serving._stop(proc)
        print(
            f"\n{'mode':<14} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
            f"{'CPU ms/req':>10} {'CPU % core':>10}"
        )
        for mode, concurrency, r in results:
            print(
                f"{mode:<14} {concurrency:>4} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>6} "
                f"{r['server_cpu_ms']:>10.2f} {r['server_cpu_ms'] * r['rps'] / 10:>10.0f}"
            )
    _decision_latency(opts.reps)


if __name__ == "__main__":
    main()
