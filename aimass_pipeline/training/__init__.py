"""Lifecycle stage: training. The frozen split, one candidate per model family, compression."""
