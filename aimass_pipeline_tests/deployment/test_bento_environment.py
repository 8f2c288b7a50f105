"""A bento carries what its champion needs: served from its own directory in an environment holding exactly
the bento's ``env/python`` requirements (BentoML among them), each shipped use case's champion answers. The champions are ensembles of every family the use case's spec lists, with their
int8 / ONNX variants, so torch, onnxruntime and XGBoost are all exercised."""

import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
import numpy as np
import pytest
import requests
from mlflow import MlflowClient

from aimass_pipeline.collection.datasets import packaged_frame
from aimass_pipeline.core.processes import reset_signals
from aimass_pipeline.core.registry import ensure_experiment, promote, register_version
from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.deployment.bento import build_champion_bento
from aimass_pipeline.deployment.requirements import PYTORCH_CPU_INDEX, bento_requirements
from aimass_pipeline.models import get_family
from aimass_pipeline.models.ensemble import SoftVotingEnsemble
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import Settings, load_settings
from aimass_pipeline.training.compression import compress
from aimass_pipeline.training.tracking import log_candidate
from aimass_pipeline_tests.bento_server import stop, wait_ready
from aimass_pipeline_tests.conftest import _ENV_KEYS, free_port
from aimass_pipeline_tests.deployment.isolated_env import isolated_python

SPECS = load_specs()
ROWS = 300


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as mp:
        for key in _ENV_KEYS:
            mp.delenv(key, raising=False)
        prepared = load_settings(tmp_path_factory.mktemp("bento-env") / "home").prepare()
        exported = prepared.child_env()
        for key in _ENV_KEYS:
            if key in exported:  # through monkeypatch, so the module's end takes them out again
                mp.setenv(key, exported[key])
        mp.setattr(mlflow_tracking_utils, "_tracking_uri", prepared.mlflow_tracking_uri)
        yield prepared


def _champion(settings: Settings, name: str) -> list[dict]:
    """Train, register and crown an ensemble of the spec's families (compressed variants where built);
    return two request records."""
    spec = SPECS[name]
    uc, contract = UseCase(spec), spec.contract
    frame = packaged_frame(spec.data.seed_source, contract).sample(n=ROWS, random_state=0)
    X, y = frame[contract.feature_names], contract.encode_target(frame[spec.data.target])
    members = []
    for family_name in uc.families:
        family = get_family(family_name)
        fitted = family.build(uc.layout, len(contract.classes), spec.families[family_name].params, 0).fit(
            X, y
        )
        variant = compress(fitted, X, y, metric=spec.metric, tolerance=1.0).compressed
        members.append(fitted if variant is None else variant)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    run_id, model_uri = log_candidate(
        experiment_id=ensure_experiment(client, name, settings.mlflow_artifacts_uri),
        run_name=f"{name}-ensemble",
        model=SoftVotingEnsemble(members=members, names=list(uc.families)),
        params={},
        metrics={"train_rows": float(len(X))},
        example=X.head(5),
        tags={},
        code_version="test",
        signing_key=settings.signing_key(),
        serialization="cloudpickle",
    )
    registered = register_version(client, name, model_uri, run_id, {}, "bento environment test")
    promote(client, name, str(registered.version))
    records = X.head(2).astype(object).where(X.head(2).notna(), None).to_dict("records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in records]


@pytest.mark.parametrize("use_case", sorted(SPECS))
def test_a_bento_serves_its_champion_with_only_its_own_requirements(
    settings: Settings, use_case: str, tmp_path: Path
) -> None:
    records = _champion(settings, use_case)
    tag = build_champion_bento(settings, use_case)
    name, bento_version = tag.split(":")
    bento_dir = settings.bentoml_home / "bentos" / name / bento_version
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text().splitlines()
    listed = [line for line in requirements if line.strip() and not line.startswith(("#", "-"))]
    assert f"bentoml=={version('bentoml')}" in listed  # BentoML lists itself, as its image installs it
    python, dists = isolated_python(listed, tmp_path / "venv")
    port = free_port()
    env = {k: v for k, v in settings.child_env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(python),
                "-m",
                "bentoml",
                "serve",
                str(bento_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=reset_signals,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, log_path)
        response = requests.post(f"{url}/predict", json={"records": records}, timeout=60)
        assert response.status_code == 200, f"{response.status_code} {response.text[:500]}"
        predictions = response.json()["predictions"]
        assert len(predictions) == 2
        assert {p["label"] for p in predictions} <= set(SPECS[use_case].contract.classes)
    finally:
        stop(proc)
    assert "aimass-pipeline" not in dists, "the platform must come from the bento's own source"


def test_bento_requirements_pin_the_champion_and_the_service_once_each() -> None:
    options = bento_requirements(
        ["mlflow==" + version("mlflow"), "torch==2.13.0+cpu", "scikit-learn", "onnxruntime>=1"]
    )
    packages = options["packages"]
    assert "torch==2.13.0" in packages and options["extra_index_url"] == [PYTORCH_CPU_INDEX]
    assert f"scikit-learn=={version('scikit-learn')}" in packages
    assert f"onnxruntime=={version('onnxruntime')}" in packages
    assert {p.split("==")[0] for p in packages} >= {"s3fs", "pyarrow", "mlflow", "psycopg2-binary"}
    assert len(packages) == len({p.split("==")[0].lower() for p in packages})
    assert "extra_index_url" not in bento_requirements(["scikit-learn"])
    with pytest.raises(
        ValueError, match=r"the champion requires numpy==1\.0 but the service requires numpy=="
    ):
        bento_requirements(["numpy==1.0"])
    with pytest.raises(ValueError, match="lacks"):
        bento_requirements(["not-a-package-here"])
