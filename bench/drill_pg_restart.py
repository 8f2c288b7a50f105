"""Drill: restart PostgreSQL during an AIMASS_ENV=prod lifecycle run, then retry it; count versions registered.

Starts its own throwaway PostgreSQL (the `pgserver` binaries, as aimass_pipeline_tests/postgres.py does), never
the machine's. Usage: .venv/bin/python bench/drill_pg_restart.py [--outage-s 8] [--after-s 60 | --when "<log text>"]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2


def start_server(data: Path, port: int, run_as: dict) -> list[str]:
    from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC2701 - pgserver exposes it nowhere else

    binary = str(POSTGRES_BIN_PATH)
    ctl = [f"{binary}/pg_ctl", "-D", str(data)]
    start = [*ctl, "-o", f"-h 127.0.0.1 -p {port} -k {data}", "-l", str(data / "server.log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True, timeout=60, **run_as)
    return ctl


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outage-s", type=float, default=8.0)
    parser.add_argument("--after-s", type=float, default=60.0)
    parser.add_argument("--use-case", default="breast_cancer")
    # Stop the server when the run's log first shows this (e.g. a step starting), else after --after-s.
    parser.add_argument("--when", default=None)
    args = parser.parse_args()

    from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC2701 - pgserver exposes it nowhere else
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    from aimass_pipeline_tests.conftest import free_port

    root = Path(tempfile.mkdtemp(prefix="aimass-drill-"))
    data = root / "pg"
    data.mkdir()
    run_as: dict = {}
    if os.geteuid() == 0:
        entry = ensure_user_exists("pgserver")
        for path in (data, POSTGRES_BIN_PATH):
            ensure_prefix_permissions(path)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o555)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
    subprocess.run(
        [f"{POSTGRES_BIN_PATH}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
        **run_as,
    )
    port = free_port()
    ctl = start_server(data, port, run_as)
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    for db in ("dagster", "mlflow", "warehouse"):
        conn.cursor().execute(f"create database {db}")
    conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMASS_", "DAGSTER_", "MLFLOW_"))} | {
        "AIMASS_HOME": str(root / "home"),
        "AIMASS_ENV": "prod",
        "AIMASS_PG_HOST": "127.0.0.1",
        "AIMASS_PG_PORT": str(port),
        "AIMASS_PG_USER": "postgres",
        "AIMASS_PG_DAGSTER_DB": "dagster",
        "AIMASS_PG_MLFLOW_DB": "mlflow",
        "AIMASS_PG_WAREHOUSE_DB": "warehouse",
        "AIMASS_PG_WAREHOUSE_SCHEMA": "wh",
        "AIMASS_LAKE_URL": str(root / "lake"),
    }
    aimass = str(Path(sys.executable).with_name("aimass"))
    command = [aimass, "run", "--use-case", args.use_case, "--max-trials", "2", "--log-level", "DEBUG"]
    attempts = []
    try:
        for attempt in (1, 2):
            started = time.monotonic()
            with (root / f"run{attempt}.log").open("w") as log:
                proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                if attempt == 1:
                    deadline = time.monotonic() + (600 if args.when else args.after_s)
                    while time.monotonic() < deadline and proc.poll() is None:
                        if args.when and args.when in (root / "run1.log").read_text(errors="replace"):
                            break
                        time.sleep(0.2)
                    print(f"server stopped {time.monotonic() - started:.1f} s into attempt 1", flush=True)
                    subprocess.run([*ctl, "-m", "fast", "stop"], check=True, capture_output=True, **run_as)
                    time.sleep(args.outage_s)
                    start_server(data, port, run_as)
                code = proc.wait(timeout=1800)
            attempts.append((attempt, code, round(time.monotonic() - started, 1)))
            print(f"attempt {attempt}: exit {code} after {attempts[-1][2]} s; log {root}/run{attempt}.log")
            if code == 0:
                break
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="mlflow")
        cur = conn.cursor()
        cur.execute(
            "select version, run_id from model_versions where name = %s order by version", (args.use_case,)
        )
        versions = cur.fetchall()
        cur.execute("select alias, version from registered_model_aliases")
        aliases = cur.fetchall()
        conn.close()
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="dagster")
        cur = conn.cursor()
        cur.execute("select status, count(*) from runs group by status")
        runs = cur.fetchall()
        # Whether the instance's run retry (the daemon) would re-execute the failed run, and why it failed.
        cur.execute(
            "select r.run_id, t.key, t.value from runs r join run_tags t on t.run_id = r.run_id "
            "where r.status = 'FAILURE' and t.key in ('dagster/failure_reason', 'dagster/will_retry')"
        )
        print(f"failed runs' tags: {cur.fetchall()}")
        conn.close()
        print(f"attempts {attempts}; dagster runs by status {runs}; versions {versions}; aliases {aliases}")
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, **run_as)
    return 0


if __name__ == "__main__":
    sys.exit(main())
