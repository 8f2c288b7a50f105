"""Lifecycle stage: transformation."""
