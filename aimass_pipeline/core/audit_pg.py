"""The audit trail's second home under ``AIMASS_ENV=prod``: one table in the instance's PostgreSQL database.

The lake keeps every event (core.audit); a copy in PostgreSQL survives a lost or rewritten lake prefix and is
what a DBA's tooling (backups, row-level grants) already covers. The table is insert-only: a trigger refuses
UPDATE and DELETE, so an edit has to drop the trigger first, which PostgreSQL's own logs then show.
"""

from __future__ import annotations

import json
from typing import Any

TABLE = "aimass_audit"

_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id TEXT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    action TEXT NOT NULL,
    use_case TEXT NOT NULL,
    who TEXT NOT NULL,
    event JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_use_case_at ON {TABLE} (use_case, at);
CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};
CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only();
"""

# Connection URLs whose table exists already in this process: the DDL runs once per process.
_READY: set[str] = set()


def _connect(url: str) -> Any:
    import psycopg2

    return psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://", 1), connect_timeout=10)


def _ensure(conn: Any, url: str) -> None:
    if url in _READY:
        return
    with conn.cursor() as cur:
        # Two first writers at once would race CREATE TABLE IF NOT EXISTS on the catalogue: serialise them.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
        cur.execute(_DDL)
    conn.commit()
    _READY.add(url)


def insert(url: str, event: dict) -> None:
    """Append one event (as ``core.audit.record`` built it); the same event id twice is kept once."""
    conn = _connect(url)
    try:
        _ensure(conn, url)
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {TABLE} (id, at, action, use_case, who, event) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (
                    event["id"],
                    event["at"],
                    event["action"],
                    event["use_case"],
                    event["who"],
                    json.dumps(event, sort_keys=True, default=str),
                ),
            )
        conn.commit()
    finally:
        conn.close()


def select(url: str, use_case: str) -> list[dict]:
    """Every event of ``use_case`` in the table, oldest first."""
    conn = _connect(url)
    try:
        _ensure(conn, url)
        with conn.cursor() as cur:
            cur.execute(f"SELECT event FROM {TABLE} WHERE use_case = %s ORDER BY at, id", (use_case,))
            rows = cur.fetchall()
    finally:
        conn.close()
    return [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]
