"""The Dagster base every stage shell builds on: a use case's asset names and keys, the shared resources,
GX results as checks, job builders and in-process runs. Only `definitions.py` puts the stages together."""
