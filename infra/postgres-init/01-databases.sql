-- Run once by the postgres image on the first start of an empty data volume, as POSTGRES_USER (who owns
-- both). Names must match AIMASS_PG_DAGSTER_DB and AIMASS_PG_MLFLOW_DB in docker-compose.yaml.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
