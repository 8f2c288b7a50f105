"""The service's view of retirement: a lake outage never holds a request once the lake has answered."""

from __future__ import annotations

import threading
import time

import anyio

from aimass_pipeline.serving import lifecycle
from aimass_pipeline.serving.lifecycle import RetiredMiddleware


def _call(middleware: RetiredMiddleware) -> tuple[int, float]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/predict", "method": "POST", "headers": []}
    started = time.perf_counter()
    anyio.run(middleware, scope, receive, send)
    return sent[0]["status"], time.perf_counter() - started


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_a_hanging_lake_read_does_not_hold_requests_and_the_state_still_arrives(monkeypatch) -> None:
    hang = threading.Event()
    answers = iter([None, {"retired_at": "t", "reason": "end of life"}])

    def retired(lake_url, storage_options, use_case):
        if hang.is_set():
            time.sleep(1.5)  # s3fs retrying a lake that went away
        return next(answers)

    monkeypatch.setattr(lifecycle, "retired", retired)
    monkeypatch.setattr(lifecycle, "RETIRED_CHECK_S", 0.0)
    middleware = RetiredMiddleware(
        _ok, use_case="uc", lake_url="s3://lake", storage_options={}, api_paths=("/predict",)
    )
    assert _call(middleware)[0] == 200  # the first answer waits for the lake
    hang.set()
    status, seconds = _call(middleware)
    assert status == 200 and seconds < 0.5, seconds  # served on the last known state
    deadline = time.monotonic() + 5
    while middleware.record is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _call(middleware)[0] == 410  # the background read's answer is used once it lands
