"""The production infra files, checked without a Docker engine.

Docker never runs on the machines that build AIMass, so a broken dagster.yaml or a compose file whose
pieces disagree would only surface on a customer's host. These tests hold the files to Dagster's own
schema and to each other: ports, variable names, database names and dependencies must line up.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.config import pg_config

from aimass_pipeline_tests.postgres import pg_env, scratch_database

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
REQUIRED_SERVICES = {"postgres", "s3", "mlflow", "code-location", "webserver", "daemon", "serving"}
INSTANCE_SERVICES = ("code-location", "webserver", "daemon")
TELEMETRY_SWITCHES = ("DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "BENTOML_DO_NOT_TRACK")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY", re.IGNORECASE)
# Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $VAR; "$$" is a literal dollar sign.
COMPOSE_VAR = re.compile(
    r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?+-][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
URI_CREDENTIALS = re.compile(r"[a-z0-9+.-]+://([^:/@\s]+):([^@\s]*)@", re.IGNORECASE)


def _yaml(name: str):
    return yaml.safe_load((INFRA / name).read_text())


def _env_example() -> dict[str, str]:
    values = {}
    for line in (INFRA / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example line is not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def _compose_vars(text: str) -> set[str]:
    uncommented = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return {braced or bare for braced, bare in COMPOSE_VAR.findall(uncommented)}


def _env_refs(node) -> set[str]:
    """Names of the environment variables a Dagster config reads through ``{env: NAME}``."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def _service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _flag_value(command: list[str], *flags: str) -> str:
    for i, arg in enumerate(command):
        if arg in flags:
            return command[i + 1]
    raise AssertionError(f"none of {flags} in {command}")


def _is_one_shot(service: dict) -> bool:
    return str(service.get("restart", "no")) == "no"


def validate_instance_dir(base_dir: Path) -> InstanceRef:
    """Validate a dagster.yaml the way Dagster does when it loads the instance, without connecting.

    ``dagster_instance_config`` checks the top-level schema only: the config of each pluggable class is
    opaque to it. Rehydrating those classes checks their own schema and resolves their ``env:`` values;
    the storage section is processed against dagster-postgres' schema instead, since building it would
    open a database connection.
    """
    config, _ = dagster_instance_config(str(base_dir))
    ref = InstanceRef.from_dir(str(base_dir))
    for data in (
        ref.run_coordinator_data,
        ref.run_launcher_data,
        ref.compute_logs_data,
        ref.scheduler_data,
        ref.local_artifact_storage_data,
    ):
        data.rehydrate()
    storage = config.get("storage", {})
    if "postgres" in storage:
        result = process_config(pg_config(), storage["postgres"])
        if not result.success:
            raise DagsterInvalidConfigError("Invalid postgres storage config", result.errors, storage)
    return ref


@pytest.fixture
def compose() -> dict:
    return _yaml("docker-compose.yaml")


@pytest.fixture
def instance_env(monkeypatch) -> dict[str, str]:
    """Every variable dagster.yaml reads, set to plausible values, so validation resolves them all."""
    plausible = {
        "AIMASS_PG_PORT": "5432",
        "AIMASS_MAX_CONCURRENT_RUNS": "3",
        "AIMASS_S3_ENDPOINT_URL": "http://127.0.0.1:8333",
        "AWS_REGION": "us-east-1",
    }
    env = {name: plausible.get(name, f"dummy-{name.lower()}") for name in _env_refs(_yaml("dagster.yaml"))}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def instance_dir(tmp_path) -> Path:
    shutil.copy(INFRA / "dagster.yaml", tmp_path / "dagster.yaml")
    return tmp_path


@pytest.mark.parametrize(
    "name", sorted(p.name for p in INFRA.iterdir() if p.suffix in (".yaml", ".yml")) or ["<none>"]
)
def test_every_yaml_file_parses_to_a_mapping(name):
    assert isinstance(_yaml(name), dict), f"{name} is empty or not a mapping"


def test_infra_files_exist():
    for name in (
        "dagster.yaml",
        "workspace.yaml",
        "docker-compose.yaml",
        "Dockerfile",
        ".env.example",
        "README.md",
        "postgres-init/01-databases.sql",
    ):
        assert (INFRA / name).is_file(), name


def test_instance_config_passes_dagsters_own_validation(instance_dir, instance_env):
    ref = validate_instance_dir(instance_dir)

    assert ref.storage_data.class_name == "DagsterPostgresStorage"
    assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    assert ref.run_launcher_data.class_name == "DefaultRunLauncher"
    assert ref.compute_logs_data.class_name == "S3ComputeLogManager"
    queue = ref.run_coordinator_data.rehydrate().get_run_queue_config()
    assert queue.max_concurrent_runs == int(instance_env["AIMASS_MAX_CONCURRENT_RUNS"])


def _set(path: list[str], value):
    def edit(config: dict) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _drop(path: list[str]):
    def edit(config: dict) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(_set(["telemetry", "enabled"], "no thanks"), id="wrong-type"),
        pytest.param(_set(["not_an_instance_key"], {}), id="unknown-top-level-key"),
        pytest.param(_set(["run_coordinator", "config", "max_concurent_runs"], 2), id="typo-in-class-config"),
        pytest.param(_set(["storage", "postgres", "postgres_db", "hostnme"], "x"), id="typo-in-storage"),
        pytest.param(_set(["compute_logs", "config", "bucket"], {"env": "AIMASS_UNSET_VAR"}), id="unset-env"),
        pytest.param(_drop(["storage", "postgres", "postgres_db", "db_name"]), id="missing-required-field"),
    ],
)
def test_instance_validation_rejects_a_broken_config(tmp_path, instance_env, monkeypatch, edit):
    # Guards the validator itself: if Dagster's checks went quiet, the passing test above would prove nothing.
    monkeypatch.delenv("AIMASS_UNSET_VAR", raising=False)
    config = _yaml("dagster.yaml")
    edit(config)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DagsterInvalidConfigError):
        validate_instance_dir(tmp_path)


def test_instance_validation_needs_every_env_var(instance_dir, instance_env, monkeypatch):
    for name in sorted(instance_env):
        monkeypatch.delenv(name)
        with pytest.raises(DagsterInvalidConfigError, match=name):
            validate_instance_dir(instance_dir)
        monkeypatch.setenv(name, instance_env[name])


def test_storage_is_postgres_through_psycopg2_with_credentials_from_env():
    config = _yaml("dagster.yaml")
    assert set(config["storage"]) == {"postgres"}
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    for field in ("hostname", "port", "username", "password", "db_name"):
        assert isinstance(db[field], dict) and set(db[field]) == {"env"}, f"{field} is not read from env"
    assert not {"run_storage", "event_log_storage", "schedule_storage"} & set(config)


def test_telemetry_and_community_prompt_are_disabled():
    config = _yaml("dagster.yaml")
    assert config["telemetry"]["enabled"] is False
    assert config["nux"]["enabled"] is False


def test_workspace_targets_the_code_location_service_port(compose):
    entries = _yaml("workspace.yaml")["load_from"]
    servers = [entry["grpc_server"] for entry in entries if "grpc_server" in entry]
    assert len(servers) == len(entries) == 1, "production loads code only from the gRPC server"
    server = servers[0]
    assert server["location_name"] == "aimass"
    assert server["host"] in compose["services"]

    code_location = compose["services"][server["host"]]
    command = code_location["command"]
    assert command[:3] == ["dagster", "api", "grpc"]
    assert _flag_value(command, "-m", "--module-name") == "aimass_pipeline.definitions"
    assert _flag_value(command, "-h", "--host") == "0.0.0.0"
    assert int(_flag_value(command, "-p", "--port")) == server["port"]
    assert int(_flag_value(code_location["healthcheck"]["test"], "-p", "--port")) == server["port"]


def test_webserver_and_daemon_read_the_workspace_the_image_ships(compose):
    dockerfile = (INFRA / "Dockerfile").read_text()
    shipped = re.search(r"^COPY\s+infra/workspace\.yaml\s+(\S+)", dockerfile, re.MULTILINE)
    assert shipped, "the Dockerfile does not copy infra/workspace.yaml"
    for name, program in (("webserver", "dagster-webserver"), ("daemon", "dagster-daemon")):
        command = compose["services"][name]["command"]
        assert command[0] == program
        assert _flag_value(command, "-w", "--workspace") == shipped.group(1)


def test_required_services_exist(compose):
    missing = REQUIRED_SERVICES - set(compose["services"])
    assert not missing, f"missing services: {sorted(missing)}"


def test_depends_on_names_existing_services_with_satisfiable_conditions(compose):
    services = compose["services"]
    for name, service in services.items():
        for dep, condition in _depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            # Compose refuses to start a stack whose conditions can never be met.
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep} to be healthy; it has no check"
                )
            elif condition == "service_completed_successfully":
                assert _is_one_shot(services[dep]), f"{name} waits for {dep} to exit, but it restarts"
            else:
                assert condition == "service_started", f"{name}: unknown condition {condition}"


def test_every_service_has_a_healthcheck_or_is_one_shot(compose):
    services = compose["services"]
    awaited = {
        dep
        for service in services.values()
        for dep, condition in _depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    for name, service in services.items():
        check = service.get("healthcheck")
        if check and not check.get("disable"):
            assert check.get("test"), f"{name} has an empty healthcheck"
        else:
            assert _is_one_shot(service) and name in awaited, f"{name} has no healthcheck and is not one-shot"


def test_every_compose_variable_is_defined_in_env_example():
    used = _compose_vars((INFRA / "docker-compose.yaml").read_text())
    undefined = used - set(_env_example())
    assert used, "the variable scanner found nothing: the regex is broken"
    assert not undefined, f"used in docker-compose.yaml but missing from .env.example: {sorted(undefined)}"


def test_env_example_has_no_unused_variables():
    unused = set(_env_example()) - _compose_vars((INFRA / "docker-compose.yaml").read_text())
    assert not unused, f"defined in .env.example but never used: {sorted(unused)}"


def test_compose_variable_scanner_sees_every_syntax():
    text = 'a: ${A}\nb: "${B:-x}"\nc: ${C:?set C}\nd: $D\ne: $${NOT_A_VAR}\n# f: ${COMMENTED}\n'
    assert _compose_vars(text) == {"A", "B", "C", "D"}


def test_no_plaintext_secret_outside_env_example(compose):
    for name, service in compose["services"].items():
        for key, value in _service_env(service).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[^}]+\}", value), f"{name}: {key} is not taken from .env"

    for path in (INFRA / "docker-compose.yaml", INFRA / "dagster.yaml", INFRA / "Dockerfile"):
        for user, password in URI_CREDENTIALS.findall(path.read_text()):
            assert password.startswith("${"), f"{path.name}: literal password in a URI for {user}"
    assert not re.search(r"^\s*(ENV|ARG)\s+\S*(PASSWORD|SECRET)", (INFRA / "Dockerfile").read_text(), re.M)

    # The template is copied verbatim by lazy operators: its secrets must be unusable as they stand.
    for key, value in _env_example().items():
        if SECRET_NAME.search(key):
            assert "change-me" in value, f".env.example ships a usable value for {key}"


def test_services_that_load_the_instance_get_every_variable_it_reads(compose):
    needed = _env_refs(_yaml("dagster.yaml"))
    for name in INSTANCE_SERVICES:
        missing = needed - set(_service_env(compose["services"][name]))
        assert not missing, f"{name} loads dagster.yaml but lacks {sorted(missing)}"


def test_code_location_gets_every_env_var_the_definitions_bind(compose):
    # Settings.prepare() exports these for the `aimass` CLI, but `dagster api grpc` never calls it: a
    # variable missing here only fails when the first run starts on the customer's host.
    pattern = re.compile(r"EnvVar\(\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']\s*\)")
    bound = {
        name
        for path in (REPO / "aimass_pipeline").rglob("*.py")
        for name in pattern.findall(path.read_text())
    }
    provided = set(_service_env(compose["services"]["code-location"]))
    assert not bound - provided, f"code-location lacks {sorted(bound - provided)}"


def test_aimass_services_run_prod_with_telemetry_off(compose):
    image = compose["services"]["code-location"]["image"]
    aimass_services = {n: s for n, s in compose["services"].items() if s.get("image") == image}
    assert set(INSTANCE_SERVICES) | {"mlflow", "serving"} <= set(aimass_services)
    for name, service in aimass_services.items():
        env = _service_env(service)
        assert env.get("AIMASS_ENV") == "prod", name
        for switch in TELEMETRY_SWITCHES:
            assert env.get(switch) == "true", f"{name}: {switch}"
        assert env.get("DBT_SEND_ANONYMOUS_USAGE_STATS") == "false", name


def test_postgres_init_creates_the_databases_the_services_use(compose):
    sql = (INFRA / "postgres-init" / "01-databases.sql").read_text()
    created = set(re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)\"?", sql, re.IGNORECASE))
    postgres = compose["services"]["postgres"]
    assert any(v.endswith(":/docker-entrypoint-initdb.d:ro") for v in postgres["volumes"])

    env = _service_env(compose["services"]["code-location"])
    mlflow_env = _service_env(compose["services"]["mlflow"])
    used = {
        env["AIMASS_PG_DAGSTER_DB"],
        env["AIMASS_PG_MLFLOW_DB"],
        env["AIMASS_PG_WAREHOUSE_DB"],
        env["MLFLOW_TRACKING_URI"].rsplit("/", 1)[1],
        mlflow_env["MLFLOW_BACKEND_STORE_URI"].rsplit("/", 1)[1],
    }
    assert used <= created, f"databases used but never created: {sorted(used - created)}"


def test_mlflow_server_is_reachable_by_the_compose_clients(compose):
    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]
    assert _flag_value(command, "--host", "-h") == "0.0.0.0"
    assert _flag_value(command, "--artifacts-destination").startswith("s3://")
    backend = _service_env(mlflow)["MLFLOW_BACKEND_STORE_URI"]
    assert backend.startswith("postgresql+psycopg2://")
    # MLflow 3 answers 403 to API calls whose Host header it does not list, while /health still passes.
    port = _flag_value(command, "--port", "-p")
    allowed = _flag_value(command, "--allowed-hosts").split(",")
    assert f"mlflow:{port}" in allowed or "mlflow:*" in allowed


def test_serving_runs_the_cli_on_all_interfaces(compose):
    command = compose["services"]["serving"]["command"]
    assert command[:2] == ["aimass", "serve"]
    assert _flag_value(command, "--host") == "0.0.0.0"
    published = compose["services"]["serving"]["ports"][0].rsplit(":", 1)[1]
    assert _flag_value(command, "--port") == published


def test_object_store_is_seaweedfs_serving_s3(compose):
    s3 = compose["services"]["s3"]
    assert s3["image"].startswith("chrislusf/seaweedfs:")
    assert s3["command"][0] == "server" and "-s3" in s3["command"]
    assert _service_env(compose["services"]["code-location"])["AIMASS_S3_ENDPOINT_URL"] == "http://s3:8333"


def test_dockerfile_builds_one_cpu_only_image_from_the_pins(compose):
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert re.search(r"^FROM\s+python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert re.search(r"pip install .*-c constraints\.txt \.", dockerfile)
    assert "download.pytorch.org/whl/cpu" in dockerfile
    assert re.search(r"^COPY\s+constraints\.txt\b", dockerfile, re.MULTILINE)
    assert re.search(r"^torch==", (REPO / "constraints.txt").read_text(), re.MULTILINE)
    assert re.search(r"^COPY\s+dbt\s", dockerfile, re.MULTILINE)
    assert re.search(r"\bdbt parse\b", dockerfile)

    assert re.search(r"^COPY\s+infra/dagster\.yaml\s+\$\{DAGSTER_HOME\}/dagster\.yaml", dockerfile, re.M)

    build = compose["services"]["code-location"]["build"]
    assert (INFRA / build["context"] / build["dockerfile"]).resolve() == (INFRA / "Dockerfile").resolve()


def test_aimass_home_never_holds_the_production_dagster_yaml(compose):
    # settings.prepare() rewrites $AIMASS_HOME/dagster/dagster.yaml with its own text, which would silently
    # replace the production instance config if DAGSTER_HOME pointed there.
    dockerfile = (INFRA / "Dockerfile").read_text()
    image_env = dict(re.findall(r"\b(DAGSTER_HOME|AIMASS_HOME)=(\S+)", dockerfile))
    assert set(image_env) == {"DAGSTER_HOME", "AIMASS_HOME"}
    image = compose["services"]["code-location"]["image"]
    for name, service in compose["services"].items():
        if service.get("image") == image:
            env = {**image_env, **_service_env(service)}
            assert Path(env["DAGSTER_HOME"]) != Path(env["AIMASS_HOME"]) / "dagster", name


@pytest.fixture
def dagster_database() -> Iterator[str]:
    """A database of its own, so Dagster's tables never collide with anyone else's."""
    with scratch_database() as name:
        yield name


def test_instance_starts_on_a_real_postgres(tmp_path, monkeypatch, instance_env, dagster_database):
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.utils import make_new_run_id
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    for name, value in {
        **pg_env(),
        "AIMASS_PG_PASSWORD": "",
        "AIMASS_PG_DAGSTER_DB": dagster_database,
    }.items():
        monkeypatch.setenv(name, value)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(INFRA / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))

    instance = DagsterInstance.get()
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.get_runs() == []

        run = DagsterRun(
            job_name="infra_smoke", run_id=make_new_run_id(), status=DagsterRunStatus.NOT_STARTED
        )
        instance.add_run(run)
        instance.report_engine_event("infra smoke test", run)
        assert [r.run_id for r in instance.get_runs()] == [run.run_id]
        assert [e.message for e in instance.all_logs(run.run_id)] == ["infra smoke test"]
        assert instance.all_instigator_state() == []
    finally:
        instance.dispose()
