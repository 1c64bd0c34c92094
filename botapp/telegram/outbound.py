"""Синхронный вызов Bot API из воркера, админки и команд: свой цикл событий и Bot на поток.

HTTP-клиент PTB привязан к циклу, поэтому цикл живёт столько же, сколько поток
(в воркере prefork — весь процесс), а не создаётся на каждый вызов.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django.conf import settings
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

T = TypeVar("T")

_local = threading.local()


def _bot() -> tuple[asyncio.AbstractEventLoop, ExtBot[Any]]:
    if getattr(_local, "bot", None) is None:
        from botapp.telegram.sender import SharedRateLimiter

        loop = asyncio.new_event_loop()
        base = settings.TELEGRAM_API_BASE_URL
        bot: ExtBot[Any] = ExtBot(
            settings.TELEGRAM_BOT_TOKEN,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            # Один интервал чата (~1 с) ждём на месте; дольше — SendDeferred, задача переназначается
            rate_limiter=SharedRateLimiter(max_wait=1.2),
            # Воркер загружает фото и видео до 50 МБ: таймауты записи и чтения — с запасом
            request=HTTPXRequest(
                connection_pool_size=4,
                connect_timeout=10,
                read_timeout=60,
                write_timeout=60,
                media_write_timeout=120,
            ),
        )
        loop.run_until_complete(bot.initialize())
        _local.loop, _local.bot = loop, bot
    return _local.loop, _local.bot


def bot_call(fn: Callable[[ExtBot[Any]], Awaitable[T]]) -> T:
    """Выполнить fn(bot) и вернуть результат; исключения PTB пробрасываются как есть."""
    loop, bot = _bot()
    return loop.run_until_complete(fn(bot))


def bot_reset() -> None:
    """Забыть Bot потока (тесты меняют TELEGRAM_API_BASE_URL между серверами)."""
    if getattr(_local, "bot", None) is not None:
        _local.loop.run_until_complete(_local.bot.shutdown())
        _local.loop.close()
        _local.bot = None
