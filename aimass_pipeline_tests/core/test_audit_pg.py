"""Under prod the audit trail also lives in PostgreSQL: every event inserted, read back with the lake's, and
the table refuses edits (a real server: aimass_pipeline_tests/postgres.py)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import psycopg2
import pytest

from aimass_pipeline.core import audit
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.serving.lifecycle import swap_recorder
from aimass_pipeline.settings import load_serving_settings, load_settings
from aimass_pipeline_tests.postgres import pg_connect, pg_query, pg_server, prod_databases


def test_the_prod_trail_is_in_postgres_and_append_only(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    with prod_databases() as env:
        for key, value in {**env, "AIMASS_ENV": "prod", "AIMASS_LAKE_URL": str(tmp_path / "lake")}.items():
            monkeypatch.setenv(key, value)
        settings = load_settings(tmp_path / "home")
        server = pg_server()
        assert settings.audit_pg_url == (
            f"postgresql://{server['user']}@{server['host']}:{server['port']}/{env['AIMASS_PG_DAGSTER_DB']}"
        )
        lake = Lake(settings.lake_url)
        first = audit.record(
            lake, action=audit.GATE, use_case="uc", evidence={"version": "1", "auc": 0.83, "promoted": True},
            who="gate", pg_url=settings.audit_pg_url,
        )  # fmt: skip
        second = audit.record(
            lake,
            action=audit.ROLLBACK,
            use_case="uc",
            evidence={"version": "1"},
            pg_url=settings.audit_pg_url,
        )
        db = env["AIMASS_PG_DAGSTER_DB"]
        rows = pg_query(db, "select id, action, who from aimass_audit order by at")
        assert rows == [(first["id"], "gate_decision", "gate"), (second["id"], "rollback", second["who"])]

        # A lake that lost its copy: the trail still answers, from PostgreSQL, and its hashes still hold.
        shutil.rmtree(tmp_path / "lake" / "audit")
        events = audit.read(lake, "uc", pg_url=settings.audit_pg_url)
        assert events == [first, second]
        audit.verify(events)

        with pg_connect(db) as conn, conn.cursor() as cur, pytest.raises(psycopg2.Error, match="append-only"):
            cur.execute("update aimass_audit set who = 'someone else'")
        with pg_connect(db) as conn, conn.cursor() as cur, pytest.raises(psycopg2.Error, match="append-only"):
            cur.execute("delete from aimass_audit")
        assert len(pg_query(db, "select id from aimass_audit")) == 2

        # A service under prod puts its swaps in the same table.
        assert load_serving_settings().audit_pg_url == settings.audit_pg_url
        on_swap = swap_recorder(settings.lake_url, {}, "uc", load_serving_settings().audit_pg_url)
        on_swap(SimpleNamespace(version="1"), SimpleNamespace(version="2", name="uc"))
        [(who, evidence)] = pg_query(
            db, "select who, event->'evidence' from aimass_audit where action = 'swap'"
        )
        assert who.startswith("service@") and (evidence["from"], evidence["to"]) == ("1", "2")
