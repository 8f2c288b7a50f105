"""Lifecycle stage: collection. Landed files become batches in the immutable raw zone, or go to quarantine."""
