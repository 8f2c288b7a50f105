-- Run once by the postgres image on the first start of an empty data volume, as POSTGRES_USER (who owns
-- all). Names must match AIMASS_PG_DAGSTER_DB, AIMASS_PG_MLFLOW_DB and AIMASS_PG_WAREHOUSE_DB in
-- docker-compose.yaml.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
CREATE DATABASE warehouse;
