"""Status codes and limits of every POST, in front of BentoML's request handling.

Status codes of a rejected request: 415 a POST whose Content-Type is not ``application/json``; 413 a body
over ``AIMASS_MAX_BODY_BYTES`` (default 8 MiB); 400 a body that is not JSON; 422 JSON that does not match the
schema (unknown field, wrong type, out of range, NaN or infinity, no records, too many), with
``detail[].loc`` naming the field, e.g. ``["records", 0, "Age"]``. (401, the API key: ``guards``.)
"""

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def validation_status(errors: Iterable[dict[str, Any]]) -> int:
    """400 when the body is not JSON at all, 422 when it is JSON the schema rejects."""
    return 400 if all(err.get("type") == "json_invalid" for err in errors) else 422


async def send_json(
    send: Send,
    status: int,
    payload: dict[str, Any],
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer a request from a middleware: a JSON body with its status and any extra headers."""
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


class RequestGuardMiddleware:
    """Content type, body size and status codes of every POST (the API routes; the probes are GETs).

    The body is read here, counting bytes as they arrive, and handed on only once complete and within the
    limit, so a client can make the server hold at most ``AIMASS_MAX_BODY_BYTES`` per request, whether it
    announces a Content-Length or streams chunks. Past the limit the rest is read and dropped (up to as much
    again) so that the client, still sending, gets to read the 413 instead of a reset connection.

    BentoML answers every pydantic ValidationError with 400; this turns those that are not about JSON
    syntax into the 422 clients of typed APIs expect, the body (``detail[].loc``) unchanged.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, api_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.limit = int(max_body_bytes)
        # Only the routes that take a POST: a POST elsewhere (/healthz, /docs.json) is the app's 405.
        self.api_paths = frozenset(api_paths)

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or (self.api_paths and scope.get("path") not in self.api_paths)
        ):
            await self.app(scope, receive, send)
            return
        media_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            shown = media_type.decode("latin-1") or "none"
            await send_json(send, 415, {"error": f"Content-Type must be application/json, got {shown}"})
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(receive, send, 0, more=int(declared) <= 2 * self.limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(receive, send, size, more=message.get("more_body", False))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), _status_for_validation(send))

    async def _too_large(
        self,
        receive: Receive,
        send: Send,
        read: int,
        more: bool,
    ) -> None:
        drained = read
        while more and drained <= 2 * self.limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send_json(
            send,
            413,
            {"error": f"request body over the limit of {self.limit} bytes", "limit_bytes": self.limit},
        )


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once (already read by a middleware), then the server's own messages."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body: wait for the disconnect as the server would report it.
        return await receive()

    return replayed


def _status_for_validation(send: Send) -> Send:
    held: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and message["status"] == 400:
            held = message
            return
        if held is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if isinstance(detail, list) and detail and all(isinstance(err, dict) for err in detail):
            held = {**held, "status": validation_status(detail)}
        await send(held)
        await send({"type": "http.response.body", "body": body})

    return wrapped
