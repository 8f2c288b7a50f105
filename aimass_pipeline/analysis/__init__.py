"""Lifecycle stage: analysis. Profiles of every batch and of the model table, with plots."""
