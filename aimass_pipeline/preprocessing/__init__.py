"""Lifecycle stage: preprocessing. Types, categories, duplicates."""
