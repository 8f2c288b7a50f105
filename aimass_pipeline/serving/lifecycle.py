"""What the service hears of a use case's lifecycle: retirement (410 Gone on the API) and its own champion
swaps, which go on the audit trail (core/audit.py) as ``swap`` events."""

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from aimass_pipeline.core import audit
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.retirement import retired
from aimass_pipeline.serving.request_limits import ASGIApp, Receive, Scope, Send, send_json

log = logging.getLogger(__name__)

# How stale the service's view of the retirement may be: one small read of the lake per second at most.
RETIRED_CHECK_S = 1.0


def api_key_id(key: str | None) -> str | None:
    """What the prediction log and the audit trail record of an API key: never the key, a short hash of it."""
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()[:12]}" if key else None


class RetiredMiddleware:
    """410 Gone on the API paths while the use case is retired (``retired/<use case>.json`` in the lake)."""

    def __init__(
        self, app: ASGIApp, *, use_case: str, lake_url: str | None, storage_options: dict, api_paths: tuple
    ) -> None:
        self.app, self.use_case, self.api_paths = app, use_case, api_paths
        self.lake_url, self.storage_options = lake_url, storage_options
        self.record: dict | None = None
        self.known = False  # one read of the lake has answered
        self.checked = float("-inf")
        self._reading = threading.Lock()  # held while a background read is in flight

    def _refresh(self) -> dict | None:
        try:
            self.record = retired(self.lake_url, self.storage_options, self.use_case)  # type: ignore[arg-type]
            self.known = True
        except Exception:  # an unreachable lake keeps the last known answer: serving goes on
            log.exception("could not read the retirement state of %s; keeping the last known", self.use_case)
        return self.record

    def _refresh_in_background(self) -> None:
        try:
            self._refresh()
        finally:
            self._reading.release()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.lake_url is None
            or scope["type"] != "http"
            or scope.get("path", "").rstrip("/") not in self.api_paths
        ):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        if now - self.checked >= RETIRED_CHECK_S:
            if not self.known:
                # Until the lake has answered once, a request waits for it: a retired use case must not
                # answer after a restart.
                self.checked = now
                await anyio.to_thread.run_sync(self._refresh)
            elif self._reading.acquire(blocking=False):
                # Later reads never hold a request: a lake outage (s3fs retries for ~20 s) must not stall
                # serving, which answers on the last known state meanwhile.
                self.checked = now
                threading.Thread(target=self._refresh_in_background, daemon=True).start()
        if self.record is None:
            await self.app(scope, receive, send)
            return
        message = (
            f"use case {self.use_case!r} was retired at {self.record.get('retired_at')} "
            f"({self.record.get('reason') or 'no reason given'}); `aimass unretire {self.use_case}` restores it"
        )
        await send_json(send, 410, {"error": message, "use_case": self.use_case, "retired": self.record})


def swap_recorder(
    lake_url: str | None, storage_options: dict, use_case: str, pg_url: str | None = None
) -> Callable[[Any, Any], None] | None:
    """The follower's ``on_swap``: one ``swap`` event per version change this service makes (in the lake, and
    in PostgreSQL with ``pg_url``)."""
    if not lake_url:
        return None
    lake = Lake(lake_url, storage_options)
    who = f"service@{socket.gethostname()}"

    def on_swap(old: Any, new: Any) -> None:
        try:
            evidence = {"from": old.version, "to": new.version, "model": new.name}
            audit.record(
                lake, action=audit.SWAP, use_case=use_case, evidence=evidence, who=who, pg_url=pg_url
            )
        except Exception:  # the swap happened; a trail the lake cannot take now must not undo it
            log.exception(
                "could not record the swap of %s to version %s on the audit trail", use_case, new.version
            )

    return on_swap
