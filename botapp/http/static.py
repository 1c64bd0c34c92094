"""Статика через WhiteNoise, но на уровне ASGI.

WhiteNoiseMiddleware умеет только sync: в цепочке Django он заставил бы каждый
запрос (и вебхук) прыгать в поток. Здесь WhiteNoise ищет файл и строит ответ
(сжатие, кэш-заголовки, 304), а всё, что не статика, идёт в Django без обёрток.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

from botapp.http.asgi import ASGIApp, Receive, Scope, Send

_CHUNK = 64 * 1024


class StaticFilesASGI:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.prefix = settings.STATIC_URL
        self.whitenoise = WhiteNoiseMiddleware(get_response=lambda request: None)

    def _find(self, path: str) -> Any:
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(path)
        return self.whitenoise.files.get(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        static_file = await asyncio.to_thread(self._find, scope["path"])
        if static_file is None:
            await self.app(scope, receive, send)
            return
        headers = {
            "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        response = await asyncio.to_thread(static_file.get_response, scope["method"], headers)
        await send(
            {
                "type": "http.response.start",
                "status": int(response.status),
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers],
            }
        )
        if response.file is None:
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            while chunk := await asyncio.to_thread(response.file.read, _CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.file.close()
