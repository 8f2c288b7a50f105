"""The one place that reads the environment: embedded defaults (local) or production (prod).

Everything AIMass keeps on one machine lives under ``AIMASS_HOME``; production swaps the Dagster
instance and the MLflow backend store for PostgreSQL and the lake for an ``s3://`` URL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from aimass_pipeline.core.locations import Location, locate, quarantine_location
from aimass_pipeline.core.specs import SpecError, UseCaseSpec, load_specs
from aimass_pipeline.settings.instance import DAGSTER_YAML_LOCAL, DAGSTER_YAML_PROD
from aimass_pipeline.settings.pii import home_pii_key, missing_key_message
from aimass_pipeline.settings.serving import storage_options
from aimass_pipeline.settings.signing import home_signing_key


class SettingsError(ValueError, RuntimeError):
    """An environment variable AIMass cannot work with: names the variable and what it needs."""


LOCAL = "local"
PROD = "prod"


def _folder_or_url(where: str) -> Path | str:
    return where.rstrip("/") if "://" in where else Path(where)


def _checkout_root() -> Path:
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PostgresSettings:
    """The production PostgreSQL server and the databases AIMass keeps in it."""

    host: str
    port: str
    user: str
    password: str
    dagster_db: str
    mlflow_db: str
    warehouse_db: str
    warehouse_schema: str

    @property
    def auth(self) -> str:
        """``user:password`` for a URI, each percent-encoded: a password holding ``@:/%#?`` would otherwise
        end the user part early and name another host or port. Never put a URI holding it on argv."""
        user = quote(self.user, safe="")
        return f"{user}:{quote(self.password, safe='')}" if self.password else user

    @property
    def url(self) -> str:
        return f"postgresql://{self.auth}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Resolved locations and URIs for one environment."""

    env: str
    home: Path
    lake_url: str
    mlflow_tracking_uri: str
    mlflow_artifacts_uri: str
    storage_options: dict = field(default_factory=dict)
    # For local and prod alike: a folder or an s3:// prefix (None: under AIMASS_HOME).
    landing_url: str | None = None
    labels_url: str | None = None
    # prod: the PostgreSQL server, the database dbt builds into and the prefix of its schemas
    # (<prefix>_<use case>).
    pg: PostgresSettings | None = None
    # AIMASS_SIGNING_KEY: the HMAC key every pickle AIMass stores is signed with (None: the home's key file).
    signing_key_env: str | None = None
    pii_key_env: str | None = None  # AIMASS_PII_KEY (None: the home's key file, locally only)

    def signing_key(self) -> str:
        """``AIMASS_SIGNING_KEY``, else this home's own key file (settings.signing)."""
        return self.signing_key_env or home_signing_key(self.home)

    def pii_key(self) -> str:
        """``AIMASS_PII_KEY``; locally else this home's key file; under prod a SettingsError without it."""
        if self.pii_key_env:
            return self.pii_key_env
        if self.env == PROD:
            raise SettingsError(missing_key_message(sorted(_pii_use_cases(self))))
        return home_pii_key(self.home)

    @property
    def specs_dir(self) -> Path:
        """Where an operator's own use-case specs live, beside the packaged ones."""
        return self.home / "specs"

    def use_case_specs(self) -> dict[str, UseCaseSpec]:
        """The use cases this deployment knows: the packaged specs plus ``$AIMASS_HOME/specs/*.yaml``. A spec
        that cannot be used is left out (``spec_errors`` names it): one broken file never takes the others down."""
        return load_specs(self.specs_dir, broken={})

    def spec_errors(self) -> dict[str, SpecError]:
        """Use case (its file's name) -> why its spec cannot be used; empty when every spec loads."""
        broken: dict[str, SpecError] = {}
        load_specs(self.specs_dir, broken=broken)
        return broken

    @property
    def audit_pg_url(self) -> str | None:
        """prod: the instance's PostgreSQL database, where the audit trail keeps its second copy."""
        return f"{self.pg.url}/{self.pg.dagster_db}" if self.pg is not None else None

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def landing_root(self) -> Path | str:
        """``AIMASS_LANDING_URL``: a local folder (default AIMASS_HOME/landing) or an ``s3://`` prefix."""
        return _folder_or_url(self.landing_url or str(self.home / "landing"))

    def landing_dir(self, use_case: str) -> Path | str:
        root = self.landing_root
        return root / use_case if isinstance(root, Path) else f"{root}/{use_case}"

    def landing_location(self, use_case: str) -> Location:
        """A use case's landing folder on its filesystem (s3 credentials as the lake's)."""
        options = self.storage_options if isinstance(self.landing_root, str) else {}
        return locate(self.landing_root, options).child(use_case)

    def quarantine_location(self, use_case: str) -> Location:
        """Beside the landing root: AIMASS_HOME/quarantine/<use case>, or s3://bucket/quarantine/<use case>."""
        return quarantine_location(self.landing_location(use_case).parent, use_case)

    @property
    def labels_root(self) -> Path | str:
        """Where true outcomes land, ``<use_case>/*.csv|parquet`` with ``prediction_id`` and the target:
        ``AIMASS_LABELS_URL``, a local folder (default AIMASS_HOME/labels) or an ``s3://`` prefix."""
        return _folder_or_url(self.labels_url or str(self.home / "labels"))

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse" / "aimass.duckdb"

    @property
    def bentoml_home(self) -> Path:
        return self.home / "bentoml"

    @property
    def dbt_target(self) -> str:
        """The dbt profile target: DuckDB (``dev``) locally, PostgreSQL (``prod``) in production."""
        return "prod" if self.env == PROD else "dev"

    def child_env(self) -> dict[str, str]:
        """Environment for processes AIMass starts (dagster, mlflow, bentoml, dbt)."""
        env = dict(os.environ)
        env.update(
            AIMASS_ENV=self.env,
            AIMASS_HOME=str(self.home),
            DAGSTER_HOME=str(self.dagster_home),
            MLFLOW_TRACKING_URI=self.mlflow_tracking_uri,
            BENTOML_HOME=str(self.bentoml_home),
            AIMASS_LAKE_URL=self.lake_url,
            AIMASS_WAREHOUSE_PATH=str(self.warehouse_path),
            AIMASS_LANDING_ROOT=str(self.landing_root),
            AIMASS_LABELS_ROOT=str(self.labels_root),
            AIMASS_MLFLOW_ARTIFACTS=self.mlflow_artifacts_uri,
            MLFLOW_DISABLE_TELEMETRY="true",
            # One "Downloading artifacts" bar per model load otherwise: noise in a run's output and logs.
            MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
            DO_NOT_TRACK="true",
            BENTOML_DO_NOT_TRACK="true",
            DAGSTER_DISABLE_TELEMETRY="true",
            OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
            AIMASS_DBT_TARGET=self.dbt_target,
            # Dagster resources (EnvVar) and the served bento verify what they unpickle with it.
            AIMASS_SIGNING_KEY=self.signing_key(),
        )
        if self.pii_key_env or self.env != PROD:
            env["AIMASS_PII_KEY"] = self.pii_key()
        if self.pg is not None:
            # The code location's resources (EnvVar) and dbt's prod profile read these.
            env.update(
                AIMASS_PG_HOST=self.pg.host,
                AIMASS_PG_PORT=self.pg.port,
                AIMASS_PG_USER=self.pg.user,
                AIMASS_PG_PASSWORD=self.pg.password,
                AIMASS_PG_WAREHOUSE_DB=self.pg.warehouse_db,
                AIMASS_PG_WAREHOUSE_SCHEMA=self.pg.warehouse_schema,
            )
        return env

    def prepare(self) -> Settings:
        """Create the directories and the Dagster instance file, and export ``child_env()`` to this process,
        where Dagster resources resolve their ``EnvVar``s at run time: the one call that writes the
        environment, made explicitly by every entry point."""
        if self.env == PROD and not self.pii_key_env and _pii_use_cases(self):
            raise SettingsError(missing_key_message(_pii_use_cases(self)))
        mlflow_dir = self.home / "mlflow"
        for path in (
            self.dagster_home,
            *([self.landing_root] if isinstance(self.landing_root, Path) else []),
            *([self.labels_root] if isinstance(self.labels_root, Path) else []),
            self.warehouse_path.parent,
            self.bentoml_home,
            mlflow_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
        if self.lake_url.startswith("/"):
            Path(self.lake_url).mkdir(parents=True, exist_ok=True)
        yaml_text = DAGSTER_YAML_PROD if self.env == PROD else DAGSTER_YAML_LOCAL
        instance_file = self.dagster_home / "dagster.yaml"
        if not instance_file.exists() or instance_file.read_text() != yaml_text:
            instance_file.write_text(yaml_text)
        # The UI's first-visit dialog asks for an e-mail address for the vendor; AIMass keeps data in-house.
        nux = self.dagster_home / ".nux" / "nux.yaml"
        if not nux.exists():
            nux.parent.mkdir(exist_ok=True)
            nux.write_text("seen: 1\n")
        os.environ.update({k: v for k, v in self.child_env().items() if k not in ("OMP_NUM_THREADS",)})
        return self


def _pii_use_cases(settings: Settings) -> list[str]:
    return [name for name, spec in settings.use_case_specs().items() if spec.data.pii is not None]


def _require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SettingsError(f"AIMASS_ENV=prod needs the environment variable {name}")
    return value


def _postgres() -> PostgresSettings:
    warehouse_schema = os.environ.get("AIMASS_PG_WAREHOUSE_SCHEMA", "aimass")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", warehouse_schema):
        # dbt-postgres quotes the schemas it derives from this prefix: anything but lower-case
        # identifier characters would name schemas that unquoted SQL cannot reach.
        raise SettingsError(
            f"AIMASS_PG_WAREHOUSE_SCHEMA must be lower-case letters, digits and _, got {warehouse_schema!r}"
        )
    return PostgresSettings(
        host=os.environ.get("AIMASS_PG_HOST", "127.0.0.1"),
        port=os.environ.get("AIMASS_PG_PORT", "5432"),
        user=_require("AIMASS_PG_USER"),
        password=os.environ.get("AIMASS_PG_PASSWORD", ""),
        dagster_db=_require("AIMASS_PG_DAGSTER_DB"),
        mlflow_db=os.environ.get("AIMASS_PG_MLFLOW_DB", "mlflow"),
        warehouse_db=os.environ.get("AIMASS_PG_WAREHOUSE_DB", "warehouse"),
        warehouse_schema=warehouse_schema,
    )


def load_settings(home: str | Path | None = None) -> Settings:
    """Read ``AIMASS_ENV`` (local|prod) and the variables that environment needs; writes nothing."""
    env = os.environ.get("AIMASS_ENV", LOCAL)
    if env not in (LOCAL, PROD):
        raise SettingsError(f"AIMASS_ENV must be '{LOCAL}' or '{PROD}', got {env!r}")
    root = Path(home or os.environ.get("AIMASS_HOME") or _checkout_root() / ".aimass").resolve()
    zones = {
        "landing_url": os.environ.get("AIMASS_LANDING_URL") or None,
        "labels_url": os.environ.get("AIMASS_LABELS_URL") or None,
        "storage_options": storage_options(),
        "signing_key_env": os.environ.get("AIMASS_SIGNING_KEY") or None,
        "pii_key_env": os.environ.get("AIMASS_PII_KEY") or None,
    }
    if env == LOCAL:
        return Settings(
            env=env,
            home=root,
            lake_url=os.environ.get("AIMASS_LAKE_URL") or str(root / "lake"),
            mlflow_tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
            mlflow_artifacts_uri=str(root / "mlflow" / "artifacts"),
            **zones,
        )
    pg = _postgres()
    return Settings(
        env=env,
        home=root,
        lake_url=_require("AIMASS_LAKE_URL"),
        mlflow_tracking_uri=f"postgresql+psycopg2://{pg.auth}@{pg.host}:{pg.port}/{pg.mlflow_db}",
        mlflow_artifacts_uri=os.environ.get("AIMASS_ARTIFACTS_URL") or str(root / "mlflow" / "artifacts"),
        pg=pg,
        **zones,
    )
