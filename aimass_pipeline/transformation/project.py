"""The dbt project, kept in its own module so ``dagster-dbt project prepare-and-package`` can load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"

# The venv's dbt, found beside this interpreter: the venv's bin is not always on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def ensure_manifest() -> Path:
    """``@dbt_assets`` needs a manifest when the code location loads; parse when it is missing or older
    than any file of the dbt project (a stale manifest names tests that no longer exist)."""
    manifest = dbt_project.manifest_path
    sources = [
        p for p in DBT_DIR.rglob("*") if p.suffix in (".sql", ".yml", ".yaml") and "target" not in p.parts
    ]
    newest = max(p.stat().st_mtime for p in sources)
    if not manifest.exists() or manifest.stat().st_mtime < newest:
        env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        subprocess.run(
            [
                DBT_EXECUTABLE,
                "parse",
                "--project-dir",
                str(DBT_DIR),
                "--profiles-dir",
                str(DBT_DIR),
                "--quiet",
            ],
            check=True,
            env=env,
        )
    return manifest


def dbt_resource(target: str) -> DbtCliResource:
    """dbt on ``target`` of profiles.yml (``Settings.dbt_target``: dev is DuckDB, prod PostgreSQL)."""
    return DbtCliResource(
        project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=DBT_EXECUTABLE, target=target
    )
