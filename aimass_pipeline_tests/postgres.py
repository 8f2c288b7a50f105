"""The PostgreSQL server the production tests run against.

The machine's own server at 127.0.0.1:5432 (trust auth, user postgres) when it answers, as `.ci/run` starts it;
otherwise a throwaway server, started once per test session on a free port from the binaries of the `pgserver`
package (a dev dependency, so a laptop with no PostgreSQL needs nothing else) and removed at exit.
``AIMASS_TEST_POSTGRES=throwaway`` forces the throwaway server even when the machine's answers.
"""

import atexit
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

MACHINE = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
# initdb refuses to run as root: the throwaway server runs as this system user (created when missing).
SERVER_USER = "pgserver"


def _answers(server: dict) -> bool:
    try:
        psycopg2.connect(**server, dbname="postgres", connect_timeout=3).close()
    except psycopg2.OperationalError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _throwaway() -> dict:
    """initdb into a temporary folder, start on a free port, register the stop and the removal at exit."""
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    data = Path(tempfile.mkdtemp(prefix="aimass-test-pg-")) / "data"
    data.mkdir()
    run_as = {}
    if os.geteuid() == 0:
        entry = ensure_user_exists(SERVER_USER)
        for path in (data, POSTGRES_BIN_PATH):
            ensure_prefix_permissions(path)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o555)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
    binary = str(POSTGRES_BIN_PATH)
    subprocess.run(
        [f"{binary}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=utf8"],
        check=True,
        capture_output=True,
        **run_as,
    )
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {data}"
    subprocess.run(
        [f"{binary}/pg_ctl", "-D", str(data), "-o", options, "-l", str(data / "server.log"), "-w", "start"],
        check=True,
        capture_output=True,
        timeout=60,
        **run_as,
    )

    def stop() -> None:
        subprocess.run(
            [f"{binary}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True, **run_as
        )
        shutil.rmtree(data.parent, ignore_errors=True)

    atexit.register(stop)
    return {"host": "127.0.0.1", "port": port, "user": "postgres"}


@functools.cache
def pg_server() -> dict:
    """host, port and user of the server every PostgreSQL test in this session uses."""
    if os.environ.get("AIMASS_TEST_POSTGRES") != "throwaway" and _answers(MACHINE):
        return MACHINE
    try:
        server = _throwaway()
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(
            "no PostgreSQL answers at 127.0.0.1:5432 and a throwaway server could not start "
            f"(`pip install pgserver`, or start one: pg_ctlcluster <version> main start): {exc}"
        )
    if not _answers(server):
        pytest.fail(f"the throwaway PostgreSQL at {server['host']}:{server['port']} does not answer")
    return server


def pg_env(dbname: str | None = None) -> dict[str, str]:
    """The AIMASS_PG_* variables that point the platform at the test server."""
    server = pg_server()
    env = {
        "AIMASS_PG_HOST": server["host"],
        "AIMASS_PG_PORT": str(server["port"]),
        "AIMASS_PG_USER": server["user"],
    }
    return env | ({"AIMASS_PG_WAREHOUSE_DB": dbname} if dbname else {})


def pg_connect(dbname: str = "postgres"):
    return psycopg2.connect(**pg_server(), dbname=dbname)


def pg_admin(sql: str) -> None:
    conn = pg_connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def pg_query(db: str, sql: str, params: tuple = ()) -> list[tuple]:
    with pg_connect(db) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh, uniquely named database, dropped after the block."""
    name = f"aimass_t_{uuid.uuid4().hex[:10]}"
    pg_admin(f'create database "{name}"')
    try:
        yield name
    finally:
        pg_admin(f'drop database if exists "{name}" with (force)')


@contextmanager
def prod_databases() -> Iterator[dict[str, str]]:
    """Fresh Dagster, MLflow and warehouse databases, named by the variables AIMASS_ENV=prod reads, with the
    server's host, port and user; dropped after the block."""
    suffix = uuid.uuid4().hex[:10]
    names = {
        "AIMASS_PG_DAGSTER_DB": f"aimass_t_{suffix}_dagster",
        "AIMASS_PG_MLFLOW_DB": f"aimass_t_{suffix}_mlflow",
        "AIMASS_PG_WAREHOUSE_DB": f"aimass_t_{suffix}_warehouse",
    }
    for name in names.values():
        pg_admin(f'create database "{name}"')
    try:
        yield {**pg_env(), **names}
    finally:
        for name in names.values():
            pg_admin(f'drop database if exists "{name}" with (force)')
