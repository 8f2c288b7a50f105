"""Lifecycle stage: transformation. dbt models (or a Python model table) into the warehouse."""
