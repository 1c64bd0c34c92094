"""Слишком большое тело отсекается 413 до того, как Django начнёт его читать."""

from __future__ import annotations

import asyncio
from typing import Any

from botapp.http.asgi import MAX_BODY_BYTES, BodySizeLimitMiddleware


class RecordingApp:
    def __init__(self) -> None:
        self.received = 0
        self.called = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _call(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[RecordingApp, list[Any]]:
    app, sent = RecordingApp(), []
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/telegram/webhook/", "headers": headers}
    await BodySizeLimitMiddleware(app)(scope, receive, send)
    return app, sent


def test_it_rejects_by_content_length_without_calling_the_app() -> None:
    app, sent = asyncio.run(_call([(b"content-length", str(MAX_BODY_BYTES + 1).encode())], [b""]))
    assert sent[0]["status"] == 413
    assert not app.called


def test_it_stops_a_chunked_body_once_it_passes_the_limit() -> None:
    chunk = b"x" * (256 * 1024)
    app, sent = asyncio.run(_call([], [chunk] * 8))
    assert sent[0]["status"] == 413
    assert app.received <= MAX_BODY_BYTES


def test_it_passes_bodies_within_the_limit() -> None:
    app, sent = asyncio.run(_call([(b"content-length", b"2")], [b"{}"]))
    assert sent[0]["status"] == 200
    assert app.received == 2
