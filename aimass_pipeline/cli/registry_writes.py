"""An operator's promote and rollback on the embedded registry (a SQLite file at the schema revision
cli/stores.py knows), written directly: MLflow's client costs ~2 s of imports before it moves an alias.
The rule is core/aliases.py's, the one the gate and the canary run through MLflow's client; here it runs
inside one write transaction, so the read it decides on and the move cannot be split by another writer.
What is written is what MLflow's own SqlAlchemyStore writes for the same calls (an alias row, a tag row),
and MLflow's client reads it back (cli/test_registry_writes.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aimass_pipeline.core.aliases import (
    CHAMPION,
    PREVIOUS,
    PROMOTED_BY,
    compare_and_set,
    rollback_move,
)

_WORKSPACE = "default"
_DELETED = "Deleted_Internal"  # MLflow's mark of a deleted version


@dataclass(frozen=True)
class Registered:
    """A registered version as the audit trail reads it (a ModelVersion's ``version`` and ``tags``)."""

    version: str
    tags: dict[str, str] = field(default_factory=dict)


class SqliteAliases:
    """core.aliases.Aliases on an open connection, inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def version_of(self, name: str, alias: str) -> str | None:
        row = self.conn.execute(
            "SELECT version FROM registered_model_aliases WHERE workspace = ? AND name = ? AND alias = ?",
            (_WORKSPACE, name, alias),
        ).fetchone()
        return str(row[0]) if row else None

    def point(self, name: str, alias: str, version: str) -> None:
        _require_version(self.conn, name, version)
        self.conn.execute(
            "INSERT INTO registered_model_aliases (workspace, name, alias, version) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (workspace, name, alias) DO UPDATE SET version = excluded.version",
            (_WORKSPACE, name, alias, int(version)),
        )


@contextmanager
def _transaction(db: Path) -> Iterator[sqlite3.Connection]:
    if not db.exists():
        raise LookupError(f"MLflow tracking database {db} does not exist: nothing is registered yet")
    with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        # IMMEDIATE: the write lock is taken before the champion is read, so no writer slips in between.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _require_version(conn: sqlite3.Connection, name: str, version: str) -> None:
    found = conn.execute(
        "SELECT 1 FROM model_versions WHERE workspace = ? AND name = ? AND version = ? AND "
        "(current_stage IS NULL OR current_stage != ?)",
        (_WORKSPACE, name, int(version), _DELETED),
    ).fetchone()
    if found is None:
        # MLflow's own words for the same miss, so both paths print the same line.
        raise LookupError(f"Model Version (name={name}, version={version}) not found")


def _registered(conn: sqlite3.Connection, name: str, alias: str) -> Registered | None:
    version = SqliteAliases(conn).version_of(name, alias)
    if version is None:
        return None
    tags = conn.execute(
        "SELECT key, value FROM model_version_tags WHERE workspace = ? AND name = ? AND version = ?",
        (_WORKSPACE, name, int(version)),
    )
    return Registered(version, dict(tags))


def promote(db: Path, name: str, version: str, by: str) -> tuple[Registered, Registered | None]:
    """Make ``version`` the champion on what is champion now, tag who did it; returns (champion, previous)."""
    with _transaction(db) as conn:
        aliases = SqliteAliases(conn)
        _require_version(conn, name, version)
        compare_and_set(aliases, name, version, aliases.version_of(name, CHAMPION), check=True)
        conn.execute(
            "INSERT INTO model_version_tags (workspace, name, version, key, value) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (workspace, key, name, version) DO UPDATE SET value = excluded.value",
            (_WORKSPACE, name, int(version), PROMOTED_BY, by),
        )
        return _registered(conn, name, CHAMPION), _registered(conn, name, PREVIOUS)


def rollback(db: Path, name: str) -> tuple[Registered, Registered | None]:
    """Swap ``champion`` and ``previous``; returns (champion, previous) after the swap."""
    with _transaction(db) as conn:
        aliases = SqliteAliases(conn)
        previous, current = rollback_move(aliases, name)
        compare_and_set(aliases, name, previous, current, check=True)
        return _registered(conn, name, CHAMPION), _registered(conn, name, PREVIOUS)
