"""``POST /predict_image``: one PNG or JPEG, as a multipart upload (field ``image``) or JSON
``{"image": "<base64>"}``, decoded exactly as landing decodes it (``core.images``) and scored as the record
of pixel columns it becomes, through ``/predict`` (same validation, answer and prediction log).

413: a body over ``AIMASS_MAX_BODY_BYTES`` or an image over the image byte limit; 415: another Content-Type;
400: JSON that does not parse; 422: no ``image``, bad base64, not an image, corrupt, too many pixels (checked
from the header, before decoding) or a mode that does not convert, with ``detail[].type`` the rule.
"""

import base64
import binascii
import json
from typing import Any

from aimass_pipeline.core.images import LIMITS, TOO_LARGE, ImageLimits, ImageRefused, decode
from aimass_pipeline.core.specs import ImageSpec
from aimass_pipeline.serving.request_limits import ASGIApp, Receive, Scope, Send, replay, send_json

IMAGE_PATH = "/predict_image"
FIELD = "image"


class _Refusal(Exception):
    def __init__(self, status: int, error: str, rule: str | None = None) -> None:
        super().__init__(error)
        self.status, self.rule = status, rule

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": str(self)}
        if self.rule:
            body["detail"] = [{"type": self.rule, "loc": [FIELD], "msg": str(self)}]
        return body


class ImageRequestMiddleware:
    """Turns a valid ``POST /predict_image`` into a one-record ``POST /predict``; answers the rest itself."""

    def __init__(
        self,
        app: ASGIApp,
        spec: ImageSpec | None,
        feature_names: list[str],
        max_body_bytes: int,
        limits: ImageLimits = LIMITS,
    ) -> None:
        self.app, self.spec, self.names = app, spec, list(feature_names)
        self.limit, self.limits = int(max_body_bytes), limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.spec is None or scope["type"] != "http" or scope.get("path") != IMAGE_PATH:
            await self.app(scope, receive, send)
            return
        if scope.get("method") != "POST":
            await send_json(send, 405, {"error": f"{IMAGE_PATH} takes POST"}, ((b"allow", b"POST"),))
            return
        try:
            body = await self._body(receive)
            data = await self._image(scope, body)
            values = decode(data, self.spec, self.limits)
        except _Refusal as refusal:
            await send_json(send, refusal.status, refusal.payload())
            return
        except ImageRefused as refused:
            status = 413 if refused.rule == TOO_LARGE else 422
            await send_json(send, status, _Refusal(status, str(refused), refused.rule).payload())
            return
        as_number = int if self.spec.kind == "int" else float
        record = {name: as_number(v) for name, v in zip(self.names, values.tolist(), strict=True)}
        forwarded = json.dumps({"records": [record]}).encode()
        headers = [
            (k, v) for k, v in scope.get("headers", []) if k not in (b"content-type", b"content-length")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(forwarded)).encode())]
        inner = {**scope, "path": "/predict", "raw_path": b"/predict", "headers": headers}
        await self.app(inner, replay(forwarded, receive), send)

    async def _body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refusal(400, "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _Refusal(413, f"request body over the limit of {self.limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _image(self, scope: Scope, body: bytes) -> bytes:
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").decode("latin-1")
        media = content_type.split(";")[0].strip().lower()
        if media == "application/json":
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise _Refusal(400, f"the body is not JSON: {exc}") from None
            _only_the_image(payload.keys() if isinstance(payload, dict) else ())
            text = payload.get(FIELD) if isinstance(payload, dict) else None
            if not isinstance(text, str):
                raise _Refusal(422, f"the body needs {FIELD!r}: the image as a base64 string", "missing")
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _Refusal(422, f"{FIELD!r} is not base64: {exc}", "base64") from None
        if media == "multipart/form-data":
            return await _multipart_image(scope, body, self.limits)
        shown = media or "none"
        raise _Refusal(415, f"Content-Type must be multipart/form-data or application/json, got {shown}")


def _only_the_image(fields) -> None:
    """The body holds the image and nothing else, as /predict's records hold only the contract's fields."""
    extra = sorted(set(fields) - {FIELD})
    if extra:
        raise _Refusal(422, f"unexpected field(s) {extra}: the body takes only {FIELD!r}", "extra_forbidden")


async def _multipart_image(scope: Scope, body: bytes, limits: ImageLimits) -> bytes:
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, receive).form(max_files=1, max_fields=8)
    except Exception as exc:  # noqa: BLE001 - python-multipart raises several types for a malformed body
        raise _Refusal(400, f"not a readable multipart body: {exc}") from None
    _only_the_image(form.keys())
    upload = form.get(FIELD)
    if not isinstance(upload, UploadFile):
        raise _Refusal(422, f"the form needs a file field {FIELD!r}", "missing")
    data = await upload.read(limits.max_image_bytes + 1)
    await form.close()
    return data
