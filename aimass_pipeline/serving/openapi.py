"""The OpenAPI document at ``/docs.json``, made to tell the truth about the API routes.

BentoML documents 200, 400, 404 and 500 for every route; the service answers 200, 400 (not JSON), 401 (API
key, only when one is set), 413 (body too large), 415 (not ``application/json``), 422 (schema) and 503
(``/predict_batch`` overloaded), each with a JSON body. This middleware rewrites the document BentoML
generates so each route lists exactly those, with their body schemas, and declares the API key as a security
scheme when one is required.
"""

import json
from collections.abc import Iterable
from typing import Any

from aimass_pipeline.serving.request_limits import ASGIApp, Receive, Scope, Send

DOCS_PATH = "/docs.json"
_REF = "#/components/schemas/{}"

ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what was wrong, in words"},
        "detail": {"description": "more about it, when there is more"},
        "limit_bytes": {"type": "integer", "description": "413: the largest body accepted"},
    },
}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "title": "ValidationError",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "loc", "msg"],
                "properties": {
                    "type": {"type": "string", "description": "pydantic's error type, e.g. missing"},
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                        "description": 'where, e.g. ["records", 0, "Age"]',
                    },
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
ERRORS = {
    "400": ("The body is not JSON", "ValidationError"),
    "401": ("Missing or wrong API key (only when the service has one)", "Error"),
    "413": ("The body is larger than AIMASS_MAX_BODY_BYTES", "Error"),
    "415": ("The Content-Type is not application/json", "Error"),
    "422": ("The JSON does not match the request schema; detail[].loc names the field", "ValidationError"),
    "503": ("Overloaded: the request could not be scored within its latency budget", "Error"),
}
# POST /predict_image (serving/images.py): its 400 has no field list, its 422 names the image rule broken.
IMAGE_ERRORS = {
    **ERRORS,
    "400": ("The JSON body does not parse, or the multipart body cannot be read", "Error"),
    "413": ("The body is over AIMASS_MAX_BODY_BYTES, or the image over the image byte limit", "Error"),
    "415": ("The Content-Type is neither multipart/form-data nor application/json", "Error"),
    "422": (
        "No image, another field, bad base64, not a PNG or JPEG, corrupt, too many pixels (read from the "
        "header, before decoding) or a mode that does not convert; detail[].type names the rule",
        "ValidationError",
    ),
}
IMAGE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                # Only the image: another field is a 422 (images._only_the_image).
                "additionalProperties": False,
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "a PNG or JPEG"}
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "additionalProperties": False,
                "properties": {
                    "image": {"type": "string", "format": "byte", "description": "a PNG or JPEG, base64"}
                },
            }
        },
    },
}
SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "BearerKey": {"type": "http", "scheme": "bearer"},
}
SECURITY = [{name: []} for name in SECURITY_SCHEMES]


def _responses(ok: dict[str, Any], errors: dict[str, tuple[str, str]], secured: bool) -> dict[str, Any]:
    responses = {"200": ok}
    for status, (description, schema) in errors.items():
        if status == "401" and not secured:
            continue
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": _REF.format(schema)}}},
        }
    return responses


def document(
    spec: dict[str, Any], api_paths: Iterable[str], secured: bool, image_path: str | None = None
) -> dict[str, Any]:
    """``spec`` with the API routes' responses as the service gives them; ``image_path``: the image route
    (an image contract's), which the middleware serves outside BentoML and BentoML does not document."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["ValidationError"] = VALIDATION_ERROR_SCHEMA
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):  # BentoML's, no longer referenced
        schemas.pop(name, None)
    if secured:
        spec["components"]["securitySchemes"] = SECURITY_SCHEMES
    for path in api_paths:
        operation = spec["paths"][path]["post"]
        operation["responses"] = _responses(operation["responses"]["200"], ERRORS, secured)
        # A POST without a body is a 415 (no Content-Type) or 400, never scored: the body is required.
        operation["requestBody"]["required"] = True
        if secured:
            operation["security"] = SECURITY
    if image_path is not None:
        predict = spec["paths"]["/predict"]["post"]
        image = {
            "operationId": "predict_image",
            "summary": "Score one image: decoded as landing decodes it, answered as /predict answers its record",
            "tags": predict.get("tags", []),
            "requestBody": IMAGE_BODY,
            "responses": _responses(predict["responses"]["200"], IMAGE_ERRORS, secured),
        }
        if secured:
            image["security"] = SECURITY
        spec["paths"][image_path] = {"post": image}
    return spec


class OpenApiMiddleware:
    """Rewrites BentoML's ``GET /docs.json`` answer with ``document``."""

    def __init__(
        self, app: ASGIApp, api_paths: Iterable[str], secured: bool, image_path: str | None = None
    ) -> None:
        self.app = app
        self.api_paths = tuple(api_paths)
        self.secured = secured
        self.image_path = image_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") != DOCS_PATH:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def held(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, held)
        body = b"".join(chunks)
        if start.get("status") == 200:
            body = json.dumps(
                document(json.loads(body), self.api_paths, self.secured, self.image_path)
            ).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
