"""Lifecycle stage: deployment."""
