"""Wall time of the CLI commands people wait on (issue 13: `status --json`, `history`, `quarantine list`,
`trace`, `promote` answer in <= 2 s; `--help` in <= 0.5 s), each in a fresh process, against a home that
holds the three champions (make one with `AIMASS_HOME=<dir> aimass run --max-trials 0`).

Run: `python -m bench.cli --home <dir> [--repeat 3] [--src <checkout>]`. ``--src`` measures another checkout's
code with this venv (how the before figures were taken: a clone of the commit before the change).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _aimass(home: Path, src: Path | None, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "AIMASS_HOME": str(home), "AIMASS_ENV": "local"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    code = "import sys; from aimass_pipeline.cli.main import main; sys.exit(main())"
    started = time.perf_counter()
    # cwd: `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH.
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=src or Path.cwd()
    )
    return time.perf_counter() - started, proc


def _commands(home: Path, src: Path | None) -> list[tuple[str, list[str]]]:
    _, proc = _aimass(home, src, "status", "--json")
    if proc.returncode != 0:
        raise SystemExit(f"aimass status failed on {home}:\n{proc.stderr}")
    use_cases = json.loads(proc.stdout)["use_cases"]
    champions = {name: info["champion"] for name, info in use_cases.items() if info["champion"]}
    if not champions:
        raise SystemExit(
            f"{home} holds no champion: run `AIMASS_HOME={home} aimass run --max-trials 0` first"
        )
    name, champion = sorted(champions.items())[0]
    commands = [
        ("--help", ["--help"]),
        ("status --json", ["status", "--json"]),
        ("status", ["status"]),
        (f"history {name}", ["history", name]),
        ("quarantine list", ["quarantine", "list"]),
        # Unknown id: the lookup still opens the prediction log and the stores (exit 1 is expected).
        ("trace <unknown id>", ["trace", "00000000-0000-0000-0000-000000000000"]),
        # The champion promoted again: idempotent on the registry, then the bento is rebuilt.
        (f"promote {name} {champion['version']}", ["promote", name, str(champion["version"])]),
    ]
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--home", type=Path, default=os.environ.get("AIMASS_HOME"), required="AIMASS_HOME" not in os.environ
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--src", type=Path, help="checkout whose aimass_pipeline to measure (default: installed)"
    )
    parser.add_argument("--skip", action="append", default=[], help="a command label prefix to skip")
    args = parser.parse_args()
    print(f"{'command':<32} {'median s':>9} {'min s':>7}  exit")
    for label, argv in _commands(args.home, args.src):
        if any(label.startswith(s) for s in args.skip):
            continue
        times, code = [], None
        for _ in range(args.repeat):
            elapsed, proc = _aimass(args.home, args.src, *argv)
            times.append(elapsed)
            code = proc.returncode
        print(f"{label:<32} {statistics.median(times):>9.2f} {min(times):>7.2f}  {code}", flush=True)


if __name__ == "__main__":
    main()
