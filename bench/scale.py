"""Rows end to end: wall time and peak RSS per stage of `aimass run` on a seeded credit_risk batch.

Generates one credit_risk-shaped CSV of N rows (``collection.synthetic``, not timed), lands it in a fresh
home and runs the whole lifecycle (landing → raw → clean → dbt features → split → tuning → candidates →
evaluation → gate → champion → bento) in a subprocess, sampling the RSS of its process tree (dbt's too)
every 0.2 s. Steps come from the Dagster event log; a step's peak is the highest sample while it ran.

    .venv/bin/python -m bench.scale [--rows 1000000 10000000] [--max-trials 2] [--workdir /tmp/aimass-bench-scale]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from aimass_pipeline.collection.synthetic import write_credit_csv

ROOT = Path(__file__).resolve().parent.parent
AIMASS = str(Path(sys.executable).with_name("aimass"))
MIB = 2**20


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _sample(pid: int, samples: list[tuple[float, int]], done: threading.Event) -> None:
    process = psutil.Process(pid)
    while not done.is_set():
        try:
            samples.append((time.time(), _tree_rss(process)))
        except psutil.NoSuchProcess:
            return
        time.sleep(0.2)


def _steps(home: Path) -> list[dict]:
    """(step, start, end) of every step of every run in the home, in start order."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    from dagster import DagsterInstance

    steps: dict[tuple[str, str], dict] = {}
    with DagsterInstance.get() as instance:
        for run in instance.get_runs():
            for record in instance.get_records_for_run(run.run_id, limit=100_000).records:
                event = record.event_log_entry.dagster_event
                if event is None or not event.step_key:
                    continue
                step = steps.setdefault((run.run_id, event.step_key), {"step": event.step_key})
                if event.event_type_value == "STEP_START":
                    step["start"] = record.event_log_entry.timestamp
                elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                    step["end"] = record.event_log_entry.timestamp
    return sorted((s for s in steps.values() if "start" in s and "end" in s), key=lambda s: s["start"])


def run_size(rows: int, workdir: Path, max_trials: int, seed: int) -> dict:
    csv = workdir / f"credit_{rows}_{seed}.csv"
    if not csv.exists():
        write_credit_csv(csv, rows, seed=seed)
    home = workdir / f"home_{rows}"
    shutil.rmtree(home, ignore_errors=True)
    landing = home / "landing" / "credit_risk"
    landing.mkdir(parents=True)
    os.link(csv, landing / "applications.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMASS_", "DAGSTER_", "MLFLOW_"))}
    env["AIMASS_HOME"] = str(home)
    command = [AIMASS, "run", "--use-case", "credit_risk", "--max-trials", str(max_trials)]
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    started = time.time()
    with open(home / "run.log", "w") as log:
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        sampler = threading.Thread(target=_sample, args=(child.pid, samples, done), daemon=True)
        sampler.start()
        code = child.wait()
    done.set()
    seconds = time.time() - started
    stages = []
    for step in _steps(home):
        inside = [rss for t, rss in samples if step["start"] <= t <= step["end"]]
        stages.append(
            {
                "step": step["step"],
                "seconds": round(step["end"] - step["start"], 1),
                "peak_rss_mib": round(max(inside) / MIB) if inside else None,
            }
        )
    return {
        "rows": rows,
        "returncode": code,
        "seconds": round(seconds, 1),
        "peak_rss_mib_tree": round(max((r for _, r in samples), default=0) / MIB),
        "peak_rss_mib_largest_process": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "stages": stages,
        "tail": (home / "run.log").read_text()[-600:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aimass-bench-scale"))
    parser.add_argument("--max-trials", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        result = run_size(rows, args.workdir, args.max_trials, args.seed)
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
        (args.workdir / f"result_{rows}.json").write_text(json.dumps(result, indent=1))
    print("\n| rows | step | seconds | peak RSS MiB (process tree) |\n|---:|---|---:|---:|")
    for r in results:
        for s in r["stages"]:
            print(f"| {r['rows']:,} | {s['step']} | {s['seconds']} | {s['peak_rss_mib']} |")
        print(
            f"| {r['rows']:,} | **whole run** (rc {r['returncode']}) | {r['seconds']} | {r['peak_rss_mib_tree']} |"
        )
    if len(results) >= 2:
        print(
            f"\ntime ratio {results[-1]['rows']:,}/{results[0]['rows']:,}: {results[-1]['seconds'] / results[0]['seconds']:.2f}"
        )


if __name__ == "__main__":
    main()
