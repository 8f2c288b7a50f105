"""HTTP serving of a use case's champion model (BentoML service, imported by BentoML, not by Dagster)."""
