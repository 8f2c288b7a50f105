"""Lifecycle stage: training."""
