"""The house rules that are not imports: modules stay small, and the import contracts (`lint-imports`, run
by `make lint`) do catch a plain module that imports Dagster."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 300
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def test_no_module_is_over_300_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "aimass_pipeline").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS], cwd=tree, capture_output=True, text=True, timeout=300)


def test_the_contracts_refuse_dagster_in_a_plain_module(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "aimass_pipeline", tmp_path / "aimass_pipeline")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert _lint(tmp_path).returncode == 0
    plain = tmp_path / "aimass_pipeline" / "core" / "errors.py"
    plain.write_text(plain.read_text() + "\nimport dagster  # noqa: E402,F401\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert re.search(r"aimass_pipeline\.core\.errors -> dagster", broken.stdout), broken.stdout[-2000:]
