"""What every stage and the served bento share, with no Dagster import: contracts and specs, errors,
locations and the lake, the registry client, scoring, latency, the prediction-log writer, lineage, GX suites."""
