"""infra/k8s/serving.yaml against the service it deploys and the bento `bentoml containerize` builds.

No cluster here: the manifest is held to the service's code (the variables it reads, the paths it answers
without a key) and to a real bento from the lifecycle home (its generated Dockerfile, a real server's probes).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from aimass_pipeline.deployment.bento import PACKAGE_FILES, bentoml_executable
from aimass_pipeline.serving.guards import OPEN_PATHS
from aimass_pipeline.settings import Settings, load_settings
from aimass_pipeline_tests.bento_server import bento_server

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "infra" / "k8s" / "serving.yaml"
USE_CASE = "credit_risk"
ENV_READ = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']""")
# Read by a library inside the service rather than by AIMass code.
LIBRARY_ENV = {"MLFLOW_TRACKING_URI"}
SECRET_ENV = re.compile(r"KEY|SECRET|PASSWORD|TOKEN")


def _docs() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert len(set(kinds)) == len(kinds), f"one of each kind expected: {kinds}"
    return {d["kind"]: d for d in docs}


def _container(docs: dict[str, dict]) -> dict:
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _env_read_by_service() -> set[str]:
    """What the bento ships and runs reads: the variables that count."""
    return {name for file in PACKAGE_FILES for name in ENV_READ.findall((REPO / file).read_text())}


def test_manifest_has_a_deployment_service_and_autoscaler() -> None:
    docs = _docs()
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    deployment, service, hpa = docs["Deployment"], docs["Service"], docs["HorizontalPodAutoscaler"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in _container(docs)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_rolling_update_never_drops_below_the_ready_pods() -> None:
    strategy = _docs()["Deployment"]["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


def test_probes_are_paths_the_service_answers_without_a_key() -> None:
    container = _container(_docs())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        # With AIMASS_API_KEY set, any other path answers 401 and the kubelet would never see the pod ready.
        assert get["path"] in OPEN_PATHS, f"{probe} {get['path']} needs the API key"
        assert get["port"] in ports or get["port"] in ports.values()
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])


def test_env_names_are_read_by_the_service_and_secrets_come_from_a_secret() -> None:
    env = {e["name"]: e for e in _container(_docs())["env"]}
    read = _env_read_by_service()
    assert {"AIMASS_API_KEY", "AIMASS_LAKE_URL", "AIMASS_PREDICTION_FLUSH_S"} <= read, (
        "the scanner misses the service's own variables: the regex is broken"
    )
    unknown = set(env) - read - LIBRARY_ENV
    assert not unknown, f"set in the manifest but read nowhere in the service: {sorted(unknown)}"
    assert {"AIMASS_API_KEY", "MLFLOW_TRACKING_URI", "AIMASS_LAKE_URL"} <= set(env)
    for name, entry in env.items():
        if SECRET_ENV.search(name):
            assert "secretKeyRef" in entry.get("valueFrom", {}), f"{name} must come from a Secret"
            assert "value" not in entry, f"{name} has a literal value"


def _bento_settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("AIMASS_LAKE_URL", raising=False)
    monkeypatch.delenv("AIMASS_ENV", raising=False)
    # The home's own key signed its models: a key another test exported must not stand in for it.
    monkeypatch.delenv("AIMASS_SIGNING_KEY", raising=False)
    return load_settings(home)


def test_a_built_bento_carries_the_dockerfile_containerize_uses(
    lifecycle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _bento_settings(lifecycle_home, monkeypatch)
    result = subprocess.run(
        [*bentoml_executable(), "get", f"{USE_CASE}:latest", "-o", "path"],
        # BentoML prints through rich, which wraps a long path at the console width (80 without a tty).
        env=settings.child_env() | {"COLUMNS": "10000"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    bento = Path(result.stdout.strip().splitlines()[-1])
    dockerfile = bento / "env" / "docker" / "Dockerfile"
    assert dockerfile.is_file(), f"no generated Dockerfile in {bento}: {sorted(os.listdir(bento))}"
    text = dockerfile.read_text()

    container = _container(_docs())
    assert [p["containerPort"] for p in container["ports"]] == [
        int(p) for p in re.findall(r"^EXPOSE\s+(\d+)$", text, re.M)
    ][:1]
    uid = re.search(r"^ARG BENTO_USER_UID=(\d+)$", text, re.M)
    pod_security = _docs()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert uid and int(uid.group(1)) == pod_security["runAsUser"]
    # The service config's envs become build args with the same defaults (serving/config.py).
    assert re.search(r"^ARG OMP_NUM_THREADS=1$", text, re.M), "the service's envs are not in the image"
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M), "the README documents python:3.11-slim"
    assert (bento / "env" / "docker" / "entrypoint.sh").is_file()


@pytest.mark.timeout(300)
def test_probes_answer_on_a_served_bento_that_requires_a_key(
    lifecycle_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _bento_settings(lifecycle_home, monkeypatch)
    container = _container(_docs())
    env = {**settings.child_env(), "AIMASS_API_KEY": "k8s-test-key", "AIMASS_PREDICTION_LOG": "off"}
    readiness = container["readinessProbe"]["httpGet"]["path"]
    with bento_server(settings, USE_CASE, tmp_path / "serve.log", env, ready_path=readiness) as server:
        for probe in ("readinessProbe", "livenessProbe"):
            path = container[probe]["httpGet"]["path"]
            assert requests.get(f"{server.url}{path}", timeout=5).status_code == 200, path
        # The key is really enforced, so the 200s above are the open paths, not an open server.
        assert requests.post(f"{server.url}/predict", json={"records": []}, timeout=5).status_code == 401
