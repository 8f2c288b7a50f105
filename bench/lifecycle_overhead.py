"""How much of the lifecycle's wall time is orchestration, with the in-process and multiprocess executors.

Each run starts from a fresh AIMASS_HOME on the real credit data. "Step time" is the sum of every step's
own duration (STEP_START → STEP_SUCCESS: its compute plus IO-manager reads and writes); the rest of the run's
wall time is the executor's overhead (process start, imports, event writes between steps).

    .venv/bin/python bench/lifecycle_overhead.py [--skip-multiprocess]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _step_seconds(dagster_home: Path) -> tuple[str, float, float, dict[str, float]]:
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.get() as instance:
        [run] = instance.get_runs(limit=1)
        record = instance.get_run_record_by_id(run.run_id)
        starts: dict[str, float] = {}
        steps: dict[str, float] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                starts[event.step_key] = entry.timestamp
            elif event.event_type == DagsterEventType.STEP_SUCCESS:
                steps[event.step_key] = entry.timestamp - starts[event.step_key]
        return run.status.value, record.start_time, record.end_time, steps


def _measure(label: str, command: list[str]) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"aimass-bench-{label}-"))
    from aimass_pipeline.settings import load_settings

    # What `aimass` exports before it starts Dagster; `dagster job execute` alone would not have it.
    env = load_settings(home).child_env()
    # The landing zone and the dbt manifest are set up outside the timed run.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from aimass_pipeline.settings import load_settings;"
            "from aimass_pipeline.collection.landing import seed_landing_zone;"
            "from aimass_pipeline.core.specs import load_specs;"
            "spec = load_specs()['credit_risk'];"
            "from aimass_pipeline.core.registry import ensure_store;"
            "s = load_settings().prepare(); ensure_store(s.mlflow_tracking_uri);"
            "seed_landing_zone(s.landing_dir(spec.name), spec.contract, spec.data.seed_source)",
        ],
        env=env,
        check=True,
    )
    started = time.monotonic()
    subprocess.run(
        command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    process_wall = time.monotonic() - started
    status, run_start, run_end, steps = _step_seconds(home / "dagster")
    run_wall = run_end - run_start
    step_total = sum(steps.values())
    return {
        "executor": label,
        "status": status,
        "process_wall": process_wall,
        "run_wall": run_wall,
        "steps": len(steps),
        "step_total": step_total,
        "overhead": run_wall - step_total,
        "slowest": sorted(steps.items(), key=lambda kv: -kv[1])[:4],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-multiprocess", action="store_true")
    args = parser.parse_args()
    results = [
        _measure(
            "in_process", [str(BIN / "aimass"), "run", "--use-case", "credit_risk", "--log-level", "WARNING"]
        )
    ]
    if not args.skip_multiprocess:
        results.append(
            _measure(
                "multiprocess",
                [
                    str(BIN / "dagster"),
                    "job",
                    "execute",
                    "-f",
                    str(ROOT / "bench" / "multiprocess_job.py"),
                    "-a",
                    "defs",
                    "-j",
                    "credit_risk_lifecycle_multiprocess",
                ],
            )
        )
    base = results[0]["run_wall"]
    print(
        f"{'executor':<13}{'status':<9}{'process s':>10}{'run s':>8}{'steps':>7}{'step s':>8}{'overhead s':>11}{'share':>7}{'vs in-proc':>11}"
    )
    for r in results:
        print(
            f"{r['executor']:<13}{r['status']:<9}{r['process_wall']:>10.1f}{r['run_wall']:>8.1f}{r['steps']:>7}"
            f"{r['step_total']:>8.1f}{r['overhead']:>11.1f}{r['overhead'] / r['run_wall']:>7.0%}{r['run_wall'] / base:>10.2f}x"
        )
    for r in results:
        print(f"slowest steps ({r['executor']}): " + ", ".join(f"{k} {v:.1f}s" for k, v in r["slowest"]))


if __name__ == "__main__":
    main()
