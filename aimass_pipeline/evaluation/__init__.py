"""Lifecycle stage: evaluation."""
