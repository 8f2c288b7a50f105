"""Retry a step whose store went away, inside the run: the run completes once the database is back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import RetryRequested

from aimass_pipeline.core.outages import is_store_outage

# A PostgreSQL restart takes seconds; four tries 10 s apart ride it out, a longer outage fails the run.
STORE_RETRIES = 4
STORE_RETRY_WAIT_S = 10.0


@contextmanager
def retry_on_store_outage() -> Iterator[None]:
    """Re-raise a lost database connection as Dagster's RetryRequested (the step reruns after a wait); any
    other error propagates as it is. Only for steps that are safe to repeat (registration finds its own
    earlier version, a candidate logs a fresh MLflow run)."""
    try:
        yield
    except RetryRequested:
        raise
    except Exception as exc:
        if not is_store_outage(exc):
            raise
        raise RetryRequested(max_retries=STORE_RETRIES, seconds_to_wait=STORE_RETRY_WAIT_S) from exc
