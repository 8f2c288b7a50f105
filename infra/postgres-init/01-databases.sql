-- Run once by the postgres image on the first start of an empty data volume, as POSTGRES_USER (who owns
-- all). Names must match AIMASS_PG_DAGSTER_DB, AIMASS_PG_MLFLOW_DB, AIMASS_PG_WAREHOUSE_DB and the database of
-- AIMASS_TUNING_STORAGE (optuna studies) in docker-compose.yaml.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
CREATE DATABASE warehouse;
CREATE DATABASE optuna;
