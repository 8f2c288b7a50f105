"""A Python environment holding exactly what a requirements list installs, for serving a bento as its
container would, without Docker or an index.

pip over a local wheel directory takes minutes for torch here, so the environment is built from this
virtualenv's own files: the requirements' closure is resolved from the installed distributions' metadata
(``Requires-Dist`` with markers and extras, as pip would resolve it to these same versions), and a fresh
``python -m venv`` (no system site-packages, no pip) gets a symlink for every file each distribution of the
closure installed (its RECORD; a whole folder at once where the folder is the distribution's alone). Nothing
else is importable: a package the bento forgot is missing there.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(requirements: list[str]) -> dict[str, Distribution]:
    """Every installed distribution the requirements pull in, by canonical name; a requirement this
    environment cannot meet (missing, another version) fails naming it."""
    found: dict[str, Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo = [Requirement(line) for line in requirements if line.strip() and not line.startswith(("#", "-"))]
    while todo:
        requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        try:
            dist = found.get(key) or distribution(requirement.name)
        except PackageNotFoundError:
            raise AssertionError(f"{requirement} is not installed in this environment") from None
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise AssertionError(f"{requirement} required, {dist.version} installed")
        found[key] = dist
        for extra in ["", *sorted(requirement.extras)]:
            if (key, extra) in done:
                continue
            done.add((key, extra))
            for line in dist.requires or []:
                dependency = Requirement(line)
                if dependency.marker is None or dependency.marker.evaluate({"extra": extra}):
                    todo.append(dependency)
    return found


def isolated_python(requirements: list[str], root: Path) -> tuple[Path, list[str]]:
    """A venv at ``root`` whose site-packages holds exactly the closure of ``requirements``; returns its
    python and the sorted distribution names."""
    dists = closure(requirements)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    [site] = list((root / "lib").glob("python3*/site-packages"))
    for name, dist in sorted(dists.items()):
        if dist.files is None:
            raise AssertionError(f"{name} has no RECORD: cannot tell which files it installed")
        for file in dist.files:
            if file.parts[0] == "..":  # console scripts and data outside site-packages
                continue
            top = Path(dist.locate_file(file.parts[0]))
            # A regular package, a dist-info or a vendored-libs folder belongs to this distribution alone:
            # one link for all of it (torch has thousands of files). A namespace folder (google/, ...) is
            # shared, so only this distribution's files in it are linked.
            whole = top.is_dir() and (
                (top / "__init__.py").exists() or top.name.endswith((".dist-info", ".libs"))
            )
            relative = Path(file.parts[0]) if whole else Path(file)
            target, source = site / relative, Path(dist.locate_file(relative))
            if target.is_symlink() or target.exists() or not source.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    return root / "bin" / "python", sorted(dists)
