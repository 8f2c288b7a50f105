"""Is this failure the database (or tracking server) being away, rather than anything wrong with the data?

A PostgreSQL restart during a run surfaces inside an asset as an MLflow or SQLAlchemy error. Dagster's run
retry treats every asset failure as a data failure and does not retry it (``retry_on_asset_or_op_failure:
false``), so the stages that write to the stores retry such a step themselves (orchestration.outages)."""

from __future__ import annotations

# Words of the driver errors a store outage raises (psycopg2 / SQLAlchemy OperationalError, MLflow's
# wrapping of them, or an HTTP tracking server that refuses connections).
_OUTAGE_TYPES = ("OperationalError", "InterfaceError", "DisconnectionError", "ConnectionError")
_OUTAGE_WORDS = (
    "connection to server",
    "could not connect",
    "server closed the connection",
    "the database system is",
    "connection refused",
    "terminating connection",
)


def is_store_outage(exc: BaseException) -> bool:
    """True when ``exc`` or anything in its cause chain is a lost or refused database connection."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {cls.__name__ for cls in type(current).__mro__}
        text = str(current).lower()
        if names & set(_OUTAGE_TYPES) or any(word in text for word in _OUTAGE_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False
