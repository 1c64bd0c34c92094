"""Обработчик Django без middleware — для вебхука Telegram и проверок здоровья.

Под ASGI каждый MiddlewareMixin вызывает process_request/process_response через
sync_to_async, то есть прыгает в общий поток: ~12 прыжков на запрос, и все
одновременные запросы процесса встают в одну очередь. Вебхуку и health не нужны ни
сессии, ни CSRF, ни аутентификация: их ведёт тот же URLconf и те же представления,
но без этой цепочки.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

logger = logging.getLogger(__name__)

# Пути, которые обслуживаются без middleware (эмулятор Bot API — тоже машинный API)
EMULATOR_PATH = "/sandbox/api/"
LEAN_PATHS = ("/telegram/webhook/", "/api/health", EMULATOR_PATH)


class LeanASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = self._get_response_async if is_async else self._get_response  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(get_response)


class PathDispatcher:
    """Точные пути — в свои ASGI-приложения (вебхук), лёгкие — в LeanASGIHandler, прочее — в Django."""

    def __init__(
        self,
        full: Any,
        lean: Any,
        exact: dict[str, Any] | None = None,
        on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.full, self.lean = full, lean
        self.exact = exact or {}
        self.on_startup = on_startup

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Момент прихода: эмулятор Bot API считает по нему лимиты, как Telegram
        scope["nb_received_at"] = time.time()
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.full(scope, receive, send)
            return
        if scope["path"].startswith(EMULATOR_PATH):
            # Уступить цикл: запросы, пришедшие одной пачкой, получают отметки прихода сразу, а не
            # после синхронной части обработки всех соседей впереди (у залпа в сотни запросов это
            # растягивало бы «приход» на доли секунды)
            await asyncio.sleep(0)
        app = self.exact.get(scope["path"])
        if app is None:
            app = self.lean if scope["path"].startswith(LEAN_PATHS) else self.full
        await app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        """Прогрев при старте воркера; сбой прогрева не мешает старту — всё создастся лениво."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for hook in self.on_startup:
                    try:
                        await hook()
                    except Exception:
                        logger.warning(
                            "startup hook %s failed", getattr(hook, "__name__", hook), exc_info=True
                        )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
