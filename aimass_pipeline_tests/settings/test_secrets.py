"""The PostgreSQL password never goes raw into a URI nor onto any child's command line (issue 11, fault 11)."""

import argparse
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from aimass_pipeline.cli.up import up_children
from aimass_pipeline.settings import PROD, Settings, load_settings
from aimass_pipeline_tests.postgres import pg_admin, prod_databases

# Every character a URI gives a meaning to, and a %-escape that must stay literal.
PASSWORD = "p@ss:w/rd%41#?x"


@pytest.fixture
def secret_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aimass_home: Settings
) -> Iterator[Settings]:
    """AIMASS_ENV=prod as a role of its own whose password holds URI characters."""
    role = f"aimass_pw_{uuid.uuid4().hex[:8]}"
    escaped = PASSWORD.replace("'", "''")
    pg_admin(f"create role {role} login superuser password '{escaped}'")
    try:
        with prod_databases() as dbs:
            for key, value in dbs.items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("AIMASS_ENV", PROD)
            monkeypatch.setenv("AIMASS_PG_USER", role)
            monkeypatch.setenv("AIMASS_PG_PASSWORD", PASSWORD)
            monkeypatch.setenv("AIMASS_LAKE_URL", str(tmp_path / "lake"))
            yield load_settings(tmp_path / "prod-home").prepare()
    finally:
        pg_admin(f"drop role if exists {role}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _argv_of_session(sid: int) -> list[str]:
    """The command lines of every live process in session ``sid`` (a child and all it started)."""
    lines = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return lines


def test_a_password_with_uri_characters_reaches_postgres(secret_settings: Settings) -> None:
    engine = sqlalchemy.create_engine(secret_settings.mlflow_tracking_uri)
    try:
        with engine.connect() as conn:
            user = conn.execute(sqlalchemy.text("select current_user")).scalar()
    finally:
        engine.dispose()
    assert user == secret_settings.pg.user, f"connected as {user!r}, not as {secret_settings.pg.user!r}"


def test_no_child_of_up_has_the_password_on_its_command_line(secret_settings: Settings) -> None:
    args = argparse.Namespace(host="127.0.0.1", port=_free_port(), mlflow_port=_free_port(), serve_port=0)
    children = up_children(secret_settings, args)
    for child in children:
        joined = " ".join(child.argv)
        assert PASSWORD not in joined and "p%40ss" not in joined, (
            f"{child.name}'s argv holds the password: {joined}"
        )
    # The MLflow UI for real: it and the server workers it starts carry the store URI in their environment.
    mlflow_ui = next(child for child in children if child.name == "mlflow")
    proc = subprocess.Popen(mlflow_ui.argv, env=mlflow_ui.env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"mlflow ui exited with {proc.returncode}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.mlflow_port}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "mlflow ui did not answer /health within 90 s"
                time.sleep(0.5)
        lines = _argv_of_session(proc.pid)
        assert len(lines) >= 2, f"expected the mlflow ui and its server workers, saw {lines}"
        leaked = [line for line in lines if PASSWORD in line or "p%40ss" in line]
        assert not leaked, f"the password is on a command line: {leaked}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_messages_name_the_store_without_its_password(secret_settings: Settings) -> None:
    from aimass_pipeline.deployment.bento import NoChampionError, resolve_champion

    with pytest.raises(NoChampionError) as info:
        resolve_champion(secret_settings, "credit_risk")
    message = str(info.value)
    assert PASSWORD not in message and "p%40ss" not in message, message
    assert f"{secret_settings.pg.user}:***@" in message, message
