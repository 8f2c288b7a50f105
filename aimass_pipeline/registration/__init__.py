"""Lifecycle stage: registration."""
