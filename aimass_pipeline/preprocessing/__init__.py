"""Lifecycle stage: preprocessing."""
