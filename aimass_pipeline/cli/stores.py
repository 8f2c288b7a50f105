"""Light, read-only views of the registry, the bento store and the Dagster run history for the commands that
only answer questions (`status`, `history`, `trace`): importing MLflow costs ~6 s, Dagster ~2 s and BentoML
more, so on the embedded defaults (SQLite stores, a local bento folder) they are read directly. Any other
store (PostgreSQL, an MLflow server) goes through the libraries' own clients, slower but the same answer."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aimass_pipeline.settings import Settings

USE_CASE_TAG = (
    "aimass/use_case"  # orchestration/use_case.py's tag (not imported: that module imports Dagster)
)
_WORKSPACE = "default"


# The revision of MLflow's schema (its alembic head, MLflow 3.17) that the SQL here and in
# cli/registry_writes.py was written against; a store at any other revision goes through MLflow's client.
# A test fails when the installed MLflow's head moves, so the SQL is reviewed before this changes.
MLFLOW_SCHEMA = "dc11669786a5"


def sqlite_registry(uri: str) -> Path | None:
    """The SQLite file of an embedded MLflow store that may be read (and moved) directly: None for another
    store or a file at a schema revision other than MLFLOW_SCHEMA. A file not there yet is returned."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(unquote(uri[len("sqlite:///") :].split("?", 1)[0]))
    if not path.exists():
        return path
    with closing(_read_only(path)) as conn:
        try:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:  # no such table: not a store MLflow made
            return None
    return path if revision == (MLFLOW_SCHEMA,) else None


def _read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def model_versions(settings: Settings, use_case: str) -> list[dict[str, Any]]:
    """Every registered version of ``use_case``, oldest first: version, run id, creation time (ms), tags and
    aliases. An empty list when the use case has no registered model yet."""
    db = sqlite_registry(settings.mlflow_tracking_uri)
    if db is None:
        return _versions_by_client(settings, use_case)
    if not db.exists():
        return []
    with closing(_read_only(db)) as conn:
        rows = conn.execute(
            "SELECT version, run_id, creation_time, status FROM model_versions "
            "WHERE name = ? AND workspace = ? ORDER BY version",
            (use_case, _WORKSPACE),
        ).fetchall()
        tags: dict[int, dict[str, str]] = {}
        for key, value, version in conn.execute(
            "SELECT key, value, version FROM model_version_tags WHERE name = ? AND workspace = ?",
            (use_case, _WORKSPACE),
        ):
            tags.setdefault(int(version), {})[key] = value
        aliases: dict[int, list[str]] = {}
        for alias, version in conn.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ? AND workspace = ? ORDER BY alias",
            (use_case, _WORKSPACE),
        ):
            aliases.setdefault(int(version), []).append(alias)
    return [
        {
            "version": int(version),
            "run_id": run_id,
            "creation_time_ms": created,
            "status": status,
            "tags": tags.get(int(version), {}),
            "aliases": aliases.get(int(version), []),
        }
        for version, run_id, created, status in rows
    ]


class SqliteRuns:
    """core.lineage.RunSource read straight from the embedded MLflow store (a trace then imports no MLflow)."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def version_run(self, name: str, version: str) -> str | None:
        from aimass_pipeline.core.lineage import MissingVersionError

        with closing(_read_only(self.db)) as conn:
            row = conn.execute(
                "SELECT run_id FROM model_versions WHERE name = ? AND version = ? AND workspace = ?",
                (name, int(version), _WORKSPACE),
            ).fetchone()
        if row is None:
            raise MissingVersionError(f"no version {version} of registered model {name!r}")
        return row[0] or None

    def run(self, run_id: str) -> tuple[str, dict[str, str]]:
        with closing(_read_only(self.db)) as conn:
            (experiment_id,) = conn.execute(
                "SELECT experiment_id FROM runs WHERE run_uuid = ?", (run_id,)
            ).fetchone()
            tags = dict(conn.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
        return str(experiment_id), tags


def run_source(settings: Settings):
    """Where `aimass trace` reads versions and runs: the SQLite file directly, else MLflow's client."""
    db = sqlite_registry(settings.mlflow_tracking_uri)
    if db is not None:
        return SqliteRuns(db)
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.core.lineage import MlflowRuns

    return MlflowRuns(MlflowClient(tracking_uri=settings.mlflow_tracking_uri))


def _versions_by_client(settings: Settings, use_case: str) -> list[dict[str, Any]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    found = client.search_model_versions(f"name = '{use_case}'")
    return [
        {
            "version": int(v.version),
            "run_id": v.run_id,
            "creation_time_ms": v.creation_timestamp,
            "status": v.status,
            "tags": dict(v.tags),
            "aliases": sorted(v.aliases),
        }
        for v in sorted(found, key=lambda v: int(v.version))
    ]


def by_alias(versions: list[dict[str, Any]], alias: str) -> dict[str, Any] | None:
    return next((v for v in versions if alias in v["aliases"]), None)


def latest_bento_tags(settings: Settings, use_cases: list[str]) -> dict[str, str | None]:
    """The newest bento tag per use case from the bento store's folders (what `bentoml list` reads)."""
    import yaml

    newest: dict[str, str | None] = {}
    for name in use_cases:
        best: tuple[str, str] | None = None
        folder = settings.bentoml_home / "bentos" / name.lower()
        for info in folder.glob("*/bento.yaml"):
            created = str(yaml.safe_load(info.read_text()).get("creation_time", ""))
            if best is None or created > best[0]:
                best = (created, f"{name.lower()}:{info.parent.name}")
        newest[name] = best[1] if best else None
    return newest


def _runs_db(settings: Settings) -> Path | None:
    """The instance's SQLite run storage, None for another storage (prod: PostgreSQL)."""
    if settings.env == "prod":
        return None
    return settings.dagster_home / "history" / "runs.db"


def last_run(settings: Settings, use_case: str) -> dict | None:
    """The newest run of any of the use case's jobs: id, job, status and its start and end times."""
    db = _runs_db(settings)
    if db is None:
        from aimass_pipeline.orchestration.jobs import last_run as by_instance

        return by_instance(use_case)
    if not db.exists():
        return None
    with closing(_read_only(db)) as conn:
        row = conn.execute(
            "SELECT r.run_id, r.pipeline_name, r.status, r.start_time, r.end_time FROM runs r "
            "JOIN run_tags t ON t.run_id = r.run_id WHERE t.key = ? AND t.value = ? ORDER BY r.id DESC LIMIT 1",
            (USE_CASE_TAG, use_case),
        ).fetchone()
    if row is None:
        return None
    run_id, job, status, started, ended = row
    return {"run_id": run_id, "job": job, "status": status, "started_at": started, "ended_at": ended}


def run_status(settings: Settings, run_id: str) -> str | None:
    """A run's status in the instance's history, None when it is not there."""
    db = _runs_db(settings)
    if db is None:
        from aimass_pipeline.orchestration.jobs import run_status as by_instance

        return by_instance(run_id)
    if not db.exists():
        return None
    with closing(_read_only(db)) as conn:
        row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return row[0] if row else None
