"""The dbt project AIMass ships (``dbt/`` beside the package) and its parsed manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

from aimass_pipeline.core.processes import venv_executable

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"
MANIFEST_PATH = DBT_DIR / "target" / "manifest.json"
DBT_EXECUTABLE = venv_executable("dbt")


def ensure_manifest() -> Path:
    """``@dbt_assets`` needs a manifest when the code location loads; parse when it is missing or older
    than any file of the dbt project (a stale manifest names tests that no longer exist)."""
    sources = [
        p for p in DBT_DIR.rglob("*") if p.suffix in (".sql", ".yml", ".yaml") and "target" not in p.parts
    ]
    newest = max(p.stat().st_mtime for p in sources)
    if not MANIFEST_PATH.exists() or MANIFEST_PATH.stat().st_mtime < newest:
        subprocess.run(
            [
                DBT_EXECUTABLE,
                "--no-send-anonymous-usage-stats",
                "parse",
                "--project-dir",
                str(DBT_DIR),
                "--profiles-dir",
                str(DBT_DIR),
                "--quiet",
            ],
            check=True,
        )
    return MANIFEST_PATH
