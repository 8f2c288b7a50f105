"""What a bento ships: what stages and the service share, the model families and the service, nothing else,
and enough of it that the service's modules import from the bento's copy alone."""

import shutil
import subprocess
import sys
from pathlib import Path

from aimass_pipeline.deployment.bento import BENTO_PACKAGES, PACKAGE_FILES

ROOT = Path(__file__).resolve().parents[2]


def test_the_bento_ships_core_models_serving_and_settings_only() -> None:
    packages = {Path(name).parts[1] for name in PACKAGE_FILES if len(Path(name).parts) > 2}
    assert packages == set(BENTO_PACKAGES) == {"core", "models", "serving", "settings"}
    assert "aimass_pipeline/__init__.py" in PACKAGE_FILES
    assert not [
        name for name in PACKAGE_FILES if name.endswith(("assets.py", "sensors.py", "definitions.py"))
    ]


def test_the_shipped_files_import_on_their_own(tmp_path: Path) -> None:
    for name in PACKAGE_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    # The service module itself resolves its model at import; every module it builds on must import here.
    modules = [
        name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        for name in PACKAGE_FILES
        if name != "aimass_pipeline/serving/service.py"
    ]
    code = (
        "import importlib, sys, aimass_pipeline\n"
        f"assert aimass_pipeline.__file__.startswith({str(tmp_path)!r}), aimass_pipeline.__file__\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m.startswith('aimass_pipeline.') and "
        f"not sys.modules[m].__file__.startswith({str(tmp_path)!r}))\n"
        "assert not leaked, leaked\n"
        "assert 'dagster' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *modules], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
