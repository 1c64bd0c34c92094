"""ASGI-обёртка: отсекает слишком большие тела до того, как Django начнёт их читать.

Собственный лимит Django отвечает 400 и только после буферизации; здесь — 413 сразу
по Content-Length, а для chunked-тела — как только прочитано больше лимита.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    pass


async def _reject(send: Send) -> None:
    body = b'{"ok": false, "error": "request body too large"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        # Пути со своим лимитом (эмулятор Bot API в песочнице принимает файлы как Telegram)
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next(
            (size for prefix, size in self.path_limits.items() if path.startswith(prefix)), self.max_body
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _reject(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _reject(send)
