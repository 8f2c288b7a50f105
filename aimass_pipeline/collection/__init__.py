"""Lifecycle stage: collection."""
