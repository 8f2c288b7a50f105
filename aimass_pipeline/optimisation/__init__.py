"""Lifecycle stage: optimisation (hyper-parameter tuning)."""
