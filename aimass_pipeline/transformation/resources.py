"""The warehouse dbt builds into and dbt itself, as typed resources: DuckDB on one machine, PostgreSQL in
production."""

from pathlib import Path

import duckdb
import pandas as pd
from dagster import (
    ConfigurableIOManager,
    ConfigurableResource,
    EnvVar,
    InputContext,
    OutputContext,
    ResourceDependency,
)
from dagster_dbt import DbtCliResource, DbtProject
from pydantic import Field

from aimass_pipeline.core.scan import BATCH_ROWS, DUCKDB_MEMORY, ScanTable
from aimass_pipeline.settings import load_settings
from aimass_pipeline.transformation.project import DBT_DIR, DBT_EXECUTABLE
from aimass_pipeline.transformation.warehouse_load import LoadReport, lake_schema, load_lake_table
from aimass_pipeline.transformation.warehouse_read import read_postgres_table

_ABSTRACT_WAREHOUSE = "WarehouseResource is the interface: bind DuckDBWarehouse or PostgresWarehouse"


class WarehouseResource(ConfigurableResource):
    """The warehouse dbt builds into: ``DuckDBWarehouse`` (target dev) or ``PostgresWarehouse`` (prod).
    Callers name tables by the use-case schema dbt's models declare (``credit_risk``)."""

    @property
    def dbt_target(self) -> str:
        raise NotImplementedError(_ABSTRACT_WAREHOUSE)

    def read_table(self, schema: str, table: str, max_rows: int | None = None) -> pd.DataFrame | ScanTable:
        """The table as a frame; above ``max_rows`` rows a warehouse that can export Parquet hands a scan."""
        raise NotImplementedError(_ABSTRACT_WAREHOUSE)

    @property
    def sources_in_lake(self) -> bool:
        """True when dbt reads its sources from the lake in place; False when ``load_source`` must copy them."""
        raise NotImplementedError(_ABSTRACT_WAREHOUSE)

    def load_source(
        self, use_case: str, table: str, frame: pd.DataFrame, *, key: str, batch_id: str = ""
    ) -> LoadReport:
        """Put a lake table where the dbt sources of ``use_case`` read it."""
        raise NotImplementedError(f"{type(self).__name__}: dbt reads its sources from the lake in place")


class DuckDBWarehouse(WarehouseResource):
    """One DuckDB file; its dbt sources read the lake's Parquet in place."""

    path: str

    @property
    def dbt_target(self) -> str:
        return "dev"

    def read_table(self, schema: str, table: str, max_rows: int | None = None) -> pd.DataFrame | ScanTable:
        name = f'"{schema}"."{table}"'
        with duckdb.connect(self.path, read_only=True) as conn:
            (rows,) = conn.execute(f"select count(*) from {name}").fetchone()
            if max_rows is None or rows <= max_rows:
                return conn.execute(f"select * from {name}").df()
            # Exported beside the warehouse file (replaced on every read), then scanned, never one frame.
            export = Path(self.path).parent / "scans" / f"{schema}.{table}.parquet"
            export.parent.mkdir(parents=True, exist_ok=True)
            conn.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
            conn.execute(
                f"copy (select * from {name}) to '{export}' (format parquet, row_group_size {BATCH_ROWS})"
            )
        return ScanTable.of_files([str(export)])

    @property
    def sources_in_lake(self) -> bool:
        return True


class PostgresWarehouse(WarehouseResource):
    """A PostgreSQL database; dbt's prod target builds ``<schema_prefix>_<use case>`` schemas in it and
    reads its sources from ``<schema_prefix>_<use case>_lake``, which ``load_source`` fills."""

    host: str
    port: str
    user: str
    password: str = Field(default="", description="Bind to EnvVar('AIMASS_PG_PASSWORD'), never a literal")
    dbname: str
    schema_prefix: str

    @property
    def dbt_target(self) -> str:
        return "prod"

    def connection(self) -> dict[str, str]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }

    def read_table(self, schema: str, table: str, max_rows: int | None = None) -> pd.DataFrame | ScanTable:
        # The same mapping as dbt/macros/generate_schema_name.sql. Always a frame: the scan export of a
        # PostgreSQL table is not built yet (issue 12 item 3 covers the DuckDB warehouse).
        return read_postgres_table(self.connection(), f"{self.schema_prefix}_{schema}", table)

    @property
    def sources_in_lake(self) -> bool:
        return False

    def load_source(
        self, use_case: str, table: str, frame: pd.DataFrame, *, key: str, batch_id: str = ""
    ) -> LoadReport:
        schema = lake_schema(self.schema_prefix, use_case)
        return load_lake_table(self.connection(), schema, table, frame, key=key, batch_id=batch_id)


class WarehouseInputManager(ConfigurableIOManager):
    """Loads dbt-built tables (asset key ``[schema, table]``) from the warehouse as DataFrames."""

    warehouse: ResourceDependency[WarehouseResource]

    def handle_output(self, context: OutputContext, obj: object) -> None:
        raise NotImplementedError("dbt writes warehouse tables; this manager only reads them")

    def load_input(self, context: InputContext) -> pd.DataFrame | ScanTable:
        schema, table = context.asset_key.path[-2], context.asset_key.path[-1]
        spec = load_settings().use_case_specs().get(context.asset_key.path[0])
        return self.warehouse.read_table(schema, table, spec.training.max_rows if spec else None)


def warehouse_resource(dbt_target: str) -> WarehouseResource:
    """The warehouse of ``dbt_target`` (``Settings.dbt_target``), bound to the variables ``Settings`` exports."""
    if dbt_target == "prod":
        return PostgresWarehouse(
            host=EnvVar("AIMASS_PG_HOST"),
            port=EnvVar("AIMASS_PG_PORT"),
            user=EnvVar("AIMASS_PG_USER"),
            password=EnvVar("AIMASS_PG_PASSWORD"),
            dbname=EnvVar("AIMASS_PG_WAREHOUSE_DB"),
            schema_prefix=EnvVar("AIMASS_PG_WAREHOUSE_SCHEMA"),
        )
    return DuckDBWarehouse(path=EnvVar("AIMASS_WAREHOUSE_PATH"))


# Its own name at module level so `dagster-dbt project prepare-and-package --file` can find it.
dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def dbt_resource(target: str) -> DbtCliResource:
    """dbt on ``target`` of profiles.yml (``Settings.dbt_target``: dev is DuckDB, prod PostgreSQL)."""
    return DbtCliResource(
        project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=DBT_EXECUTABLE, target=target
    )
