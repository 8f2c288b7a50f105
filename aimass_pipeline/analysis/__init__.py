"""Lifecycle stage: analysis."""
