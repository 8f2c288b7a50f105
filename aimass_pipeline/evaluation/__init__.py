"""Lifecycle stage: evaluation and promotion. Candidates scored on the frozen holdout; the gate moves `champion`."""
