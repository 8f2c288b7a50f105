"""The scaled-out topology without a cluster: every Kubernetes manifest against the Kubernetes schema
(kubernetes-validate ships the schemas, nothing is downloaded), the Helm values against the code they deploy,
and the compose broker and workers against the executor's settings."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from aimass_pipeline.orchestration.executor import VISIBILITY_TIMEOUT_S
from aimass_pipeline.settings.scale import DEFAULT_QUEUE, TRAINING_QUEUE
from aimass_pipeline_tests.infra.test_infra_files import _env_refs, _flag_value, _service_env

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
K8S_VERSION = "1.33.0"  # the oldest Kubernetes minor still supported upstream when this was written
MANIFESTS = sorted((INFRA / "k8s").glob("*.yaml"))
VALUES = INFRA / "helm" / "dagster-values.yaml"
# Documented in dagster-values.yaml as living in the Secret aimass-platform, never in a committed file.
SECRET_KEYS = {
    "AIMASS_SIGNING_KEY",
    "AIMASS_PG_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_TRACKING_URI",
}
WORKERS = ("worker", "worker-training")


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((INFRA / "docker-compose.yaml").read_text())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_passes_the_kubernetes_schema(path: Path) -> None:
    for doc in _docs(path):
        # strict: an unknown field (a typo Kubernetes would silently drop) fails too.
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_rejects_a_broken_manifest() -> None:
    deployment = next(d for d in _docs(INFRA / "k8s" / "serving.yaml") if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="replicas"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    deployment["spec"]["replicas"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo of resources
    with pytest.raises(kubernetes_validate.ValidationError, match="resource"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_serving_scales_with_an_autoscaler() -> None:
    kinds = {d["kind"]: d for d in _docs(INFRA / "k8s" / "serving.yaml")}
    hpa = kinds["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


def _pod_with(container: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {"containers": [{"name": "c", "image": "x", **container}]},
    }


def test_helm_values_deploy_the_code_location_with_k8s_runs() -> None:
    values = yaml.safe_load(VALUES.read_text())
    pyproject = (REPO / "pyproject.toml").read_text()
    module = re.search(r'module_name = "([^"]+)"', pyproject).group(1)
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    [config_map] = _docs(INFRA / "k8s" / "platform-config.yaml")
    for holder in (deployment, launcher):
        assert holder["envConfigMaps"] == [{"name": config_map["metadata"]["name"]}]
        assert holder["envSecrets"] == [{"name": "aimass-platform"}]
    # Steps as Jobs need the k8s executor inside the runs the launcher starts.
    assert config_map["data"]["AIMASS_EXECUTOR"] == "k8s"
    # The Kubernetes objects embedded in the values pass the same schema as a pod's container would.
    for resources in (deployment["resources"], launcher["runK8sConfig"]["containerConfig"]["resources"]):
        kubernetes_validate.validate(_pod_with({"resources": resources}), K8S_VERSION, strict=True)
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlScheme"] == "postgresql+psycopg2"
    assert "postgresqlPassword" not in postgres and values["generatePostgresqlPasswordSecret"] is False
    assert values["telemetry"]["enabled"] is False
    assert not any(values[broker]["enabled"] for broker in ("rabbitmq", "redis", "flower"))
    dagster_pin = re.search(r"^dagster==(\S+)$", (REPO / "constraints.txt").read_text(), re.M).group(1)
    assert f"--version {dagster_pin}" in VALUES.read_text(), "chart version and dagster pin disagree"


def test_platform_config_covers_every_variable_the_definitions_bind() -> None:
    pattern = re.compile(r"EnvVar\(\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']\s*\)")
    bound = {n for p in (REPO / "aimass_pipeline").rglob("*.py") for n in pattern.findall(p.read_text())}
    [config_map] = _docs(INFRA / "k8s" / "platform-config.yaml")
    data = config_map["data"]
    assert not bound - set(data) - SECRET_KEYS, f"nobody provides {sorted(bound - set(data) - SECRET_KEYS)}"
    assert not SECRET_KEYS & set(data), "a secret in the ConfigMap"
    assert all(isinstance(v, str) for v in data.values())


def test_compose_has_a_broker_whose_timeout_outlasts_a_step(compose: dict) -> None:
    broker = compose["services"]["broker"]
    assert broker["image"].startswith("rabbitmq:")
    [mount] = [v for v in broker["volumes"] if v.startswith("./rabbitmq/")]
    conf = (INFRA / mount.split(":")[0].removeprefix("./")).read_text()
    timeout_ms = int(re.search(r"^consumer_timeout\s*=\s*(\d+)", conf, re.M).group(1))
    # One limit for both brokers: RabbitMQ's consumer_timeout and Redis' visibility_timeout.
    assert timeout_ms == VISIBILITY_TIMEOUT_S * 1000
    assert mount.endswith(":/etc/rabbitmq/conf.d/20-aimass.conf:ro")


def test_compose_workers_cover_both_queues_on_the_shared_instance(compose: dict) -> None:
    services = compose["services"]
    queues, needed = set(), _env_refs(yaml.safe_load((INFRA / "dagster.yaml").read_text()))
    for name in WORKERS:
        worker = services[name]
        command = worker["command"]
        assert command[:2] == ["aimass", "worker"]
        queues.add(_flag_value(command, "--queue"))
        env = _service_env(worker)
        assert env["AIMASS_EXECUTOR"] == "${AIMASS_EXECUTOR:?set AIMASS_EXECUTOR in .env}"
        assert "@broker:5672/" in env["AIMASS_CELERY_BROKER"]
        assert not needed - set(env), f"{name} lacks {sorted(needed - set(env))}"
        assert env == _service_env(services["code-location"]), f"{name} sees another platform"
        assert "aimass-home:/var/lib/aimass" in worker["volumes"]
        assert f"{_flag_value(command, '--name')}@$$HOSTNAME" in " ".join(worker["healthcheck"]["test"])
        assert worker["depends_on"]["broker"]["condition"] == "service_healthy"
    assert queues == {DEFAULT_QUEUE, TRAINING_QUEUE}
    optuna_db = _service_env(services["code-location"])["AIMASS_TUNING_STORAGE"].rsplit("/", 1)[1]
    assert f"CREATE DATABASE {optuna_db};" in (INFRA / "postgres-init" / "01-databases.sql").read_text()
