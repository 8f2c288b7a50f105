"""Package the MLflow registry's champion as a Bento and serve it.

Everything that touches BentoML's stores runs in a child process started with ``settings.child_env()``:
BentoML resolves ``BENTOML_HOME`` lazily, on the first store access, and then caches the path (and the
model/bento stores built on it) for the life of the process. In a long-lived process -- a Dagster code
server, a test session with several temporary homes -- an in-process call would silently write to
whichever home came first. A child pays a few seconds of imports and always sees the right home.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aimass_pipeline.core.processes import reset_signals, venv_executable
from aimass_pipeline.core.registry import champion_version, redacted, threshold_of
from aimass_pipeline.deployment.requirements import bento_requirements
from aimass_pipeline.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "aimass_pipeline.serving.service:ChampionService"
# What the service imports, copied into the bento so it serves the code it was built with: what stages
# and the service share, the model families its champions are made of, the service and what it reads from
# its environment. No stage, no Dagster shell.
BENTO_PACKAGES = ("core", "models", "serving", "settings")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = tuple(
    sorted(
        str(path.relative_to(_PACKAGE_ROOT.parent))
        for pattern in ("__init__.py", *(f"{package}/**/*.py" for package in BENTO_PACKAGES))
        for path in _PACKAGE_ROOT.glob(pattern)
    )
)


class NoChampionError(LookupError):
    """The registry has no model version under the ``champion`` alias for a use case."""


class NoBentoError(LookupError):
    """No bento has been built for a use case yet."""


@dataclass(frozen=True)
class Champion:
    use_case: str
    version: str
    run_id: str
    threshold: float
    spec: dict[str, Any]

    @property
    def model_tag(self) -> str:
        return f"{self.use_case}:v{self.version}"


def resolve_champion(settings: Settings, use_case: str) -> Champion:
    """The model version the ``champion`` alias of the use case's registered model points at."""
    from mlflow import MlflowClient

    version = champion_version(MlflowClient(tracking_uri=settings.mlflow_tracking_uri), use_case)
    if version is None:
        raise NoChampionError(
            f"no champion to serve for {use_case!r}: the registry at {redacted(settings.mlflow_tracking_uri)} has no "
            f"version of registered model {use_case!r} with the champion alias"
        )
    spec = settings.use_case_specs()[use_case].model_dump(mode="json")
    return Champion(
        use_case=use_case,
        version=str(version.version),
        run_id=version.run_id or "",
        threshold=threshold_of(version.tags, f"{use_case} version {version.version}"),
        spec=spec,
    )


def build_champion_bento(settings: Settings, use_case: str) -> str:
    """Import the champion into the Bento model store (once per version), build a bento; return its tag.

    Builds of one use case run one at a time, each resolving the champion once it holds the lock: the last
    build to start began after the last alias move, so the newest bento (what `aimass serve` starts) serves
    the champion, however promotes, rollbacks and their background builds interleave."""
    settings.bentoml_home.mkdir(parents=True, exist_ok=True)
    with open(settings.bentoml_home / f".build-{use_case}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        champion = resolve_champion(settings, use_case)
        tag = _in_bentoml_child(settings, "_build", asdict(champion))
    log.info("built bento %s serving %s", tag, champion.model_tag)
    return str(tag)


def latest_bento_tag(settings: Settings, use_case: str) -> str | None:
    """Tag of the newest bento built for the use case, or None."""
    return latest_bento_tags(settings, [use_case])[use_case]


def latest_bento_tags(settings: Settings, use_cases: list[str]) -> dict[str, str | None]:
    """The newest bento tag per use case, from one BentoML child process (each costs about a second)."""
    return _in_bentoml_child(settings, "_latest", {"use_cases": list(use_cases)})


def bentoml_executable() -> list[str]:
    """The venv's ``bentoml``, or ``python -m bentoml`` where the console script is missing."""
    exe = venv_executable("bentoml")
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "bentoml"]


def _in_bentoml_child(settings: Settings, func: str, payload: dict[str, Any]) -> Any:
    with tempfile.TemporaryDirectory(prefix="aimass-bento-") as tmp:
        out = Path(tmp) / "result.json"
        code = "import sys; from aimass_pipeline.deployment import bento; bento._child_main(*sys.argv[1:])"
        proc = subprocess.run(
            [sys.executable, "-c", code, func, json.dumps(payload), str(out)],
            env=settings.child_env(),
            capture_output=True,
            text=True,
            timeout=900,
            preexec_fn=reset_signals,
        )
        if proc.returncode != 0 or not out.exists():
            detail = (proc.stderr or proc.stdout)[-4000:]
            raise RuntimeError(f"bentoml {func.lstrip('_')} failed (exit {proc.returncode}):\n{detail}")
        log.debug("bentoml %s output:\n%s", func.lstrip("_"), proc.stderr)
        return json.loads(out.read_text())


def _child_main(func: str, payload: str, out: str) -> None:
    result = {"_build": _build, "_latest": _latest}[func](json.loads(payload))
    Path(out).write_text(json.dumps(result))


def _latest(payload: dict[str, Any]) -> dict[str, str | None]:
    import bentoml

    newest: dict[str, str | None] = {}
    for use_case in payload["use_cases"]:
        try:
            bentos = bentoml.bentos.list(use_case)
        except bentoml.exceptions.NotFound:
            bentos = []
        newest[use_case] = str(max(bentos, key=lambda b: b.info.creation_time).tag) if bentos else None
    return newest


def _stored_run_id(tag: str) -> str | None:
    import bentoml

    try:
        return str(bentoml.models.get(tag).info.metadata.get("run_id", ""))
    except bentoml.exceptions.NotFound:
        return None


def _import_once(champion: Champion, labels: dict[str, str]) -> None:
    import bentoml

    stored = _stored_run_id(champion.model_tag)
    if stored is None:
        try:
            # Pinned to the version, not to the alias, which may have moved since it was resolved.
            bentoml.mlflow.import_model(
                champion.model_tag,
                f"models:/{champion.use_case}/{champion.version}",
                labels={**labels, "run_id": champion.run_id},
                metadata={
                    "registered_model_name": champion.use_case,
                    "model_version": champion.version,
                    "run_id": champion.run_id,
                    "threshold": champion.threshold,
                },
            )
            return
        except bentoml.exceptions.BentoMLException:
            # Another build may have imported the same version meanwhile ("already exists").
            stored = _stored_run_id(champion.model_tag)
            if stored is None:
                raise
    if stored != champion.run_id:
        # Version numbers restart when a registry is recreated; "v1" alone would then serve a stale model.
        raise RuntimeError(
            f"the Bento model store already holds {champion.model_tag} from MLflow run {stored!r}, but "
            f"registry version {champion.version} comes from run {champion.run_id!r}; was the registry "
            f"recreated? Remove the old one with `bentoml models delete {champion.model_tag}`."
        )


def _model_requirements(model_tag: str) -> list[str]:
    import bentoml

    path = Path(bentoml.models.get(model_tag).path_of("mlflow_model/requirements.txt"))
    if not path.is_file():
        raise FileNotFoundError(f"model {model_tag} has no MLflow requirements.txt at {path}")
    return path.read_text().splitlines()


def _build(payload: dict[str, Any]) -> str:
    import bentoml

    champion = Champion(**payload)
    labels = {
        "use_case": champion.use_case,
        "model_name": champion.use_case,
        "model_version": champion.version,
    }
    _import_once(champion, labels)
    source_root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="aimass-bento-ctx-") as ctx:
        # A small build context of its own: bentoml walks every file under it, and the checkout may be a
        # site-packages directory or hold a multi-GB venv.
        for rel in PACKAGE_FILES:
            (Path(ctx) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source_root / rel, Path(ctx) / rel)
        bento = bentoml.bentos.build(
            SERVICE,
            name=champion.use_case,
            labels=labels,
            build_ctx=ctx,
            include=list(PACKAGE_FILES),
            # Stored in bento.yaml and restored before the service module is imported at serve time:
            # this is what pins the bento to the imported champion.
            args={"use_case": champion.use_case, "model_tag": champion.model_tag, "spec": champion.spec},
            python=bento_requirements(_model_requirements(champion.model_tag)),
        )
    return str(bento.tag)
