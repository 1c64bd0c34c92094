"""Синхронный вызов Bot API из воркера, админки и команд: свой цикл событий и Bot на поток.

HTTP-клиент PTB привязан к циклу, поэтому цикл живёт столько же, сколько поток
(в воркере prefork — весь процесс), а не создаётся на каждый вызов.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django.conf import settings
from telegram.ext import ExtBot

from botapp.telegram.httpclient import AiohttpRequest
from botapp.telegram.sender import OutgoingLog, SharedRateLimiter, outgoing_log

T = TypeVar("T")

logger = logging.getLogger(__name__)

_local = threading.local()


def _bot() -> tuple[asyncio.AbstractEventLoop, ExtBot[Any]]:
    if getattr(_local, "bot", None) is None:
        loop = asyncio.new_event_loop()
        base = settings.TELEGRAM_API_BASE_URL
        bot: ExtBot[Any] = ExtBot(
            settings.TELEGRAM_BOT_TOKEN,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            # Свою очередь лимитера (интервал чата ~1 с) ждём на месте; дольше и любой 429 от
            # Telegram — SendDeferred: задача переназначается, слот воркера не спит
            rate_limiter=SharedRateLimiter(max_wait=1.2, sleep_on_retry=False),
            # Воркер загружает фото и видео до 50 МБ: таймауты записи и чтения — с запасом.
            # aiohttp, как и в вебе: httpx стоил воркеру ~15 % CPU на задание
            request=AiohttpRequest(
                pool_size=4,
                connect_timeout=10,
                read_timeout=60,
                write_timeout=60,
                media_write_timeout=120,
            ),
        )
        loop.run_until_complete(bot.initialize())
        _local.loop, _local.bot = loop, bot
    return _local.loop, _local.bot


def bot_call(fn: Callable[[ExtBot[Any]], Awaitable[T]], *, max_wait: float | None = None) -> T:
    """Выполнить fn(bot) и вернуть результат; исключения PTB пробрасываются как есть.

    max_wait — сколько этот вызов готов ждать очереди лимитера на месте (по умолчанию ~1 с);
    дольше — SendDeferred. Доставка в воркере ждёт мало: слот воркера не должен спать
    секунду из-за лимита одного чата, задача переназначается.
    """
    loop, bot = _bot()
    limiter = bot.rate_limiter
    shared = isinstance(limiter, SharedRateLimiter) and max_wait is not None
    if shared:
        usual, limiter.max_wait = limiter.max_wait, max_wait  # type: ignore[union-attr]
    # Журнал переписки — одной вставкой после вызова, без похода в поток на каждое сообщение;
    # отправленное до сбоя (429 на втором файле) тоже записывается
    log = OutgoingLog()
    token = outgoing_log.set(log)
    try:
        return loop.run_until_complete(fn(bot))
    finally:
        outgoing_log.reset(token)
        if shared:
            limiter.max_wait = usual  # type: ignore[union-attr]
        rows = log.close()
        if rows:
            _record_log(rows)


def _record_log(rows: list[dict[str, Any]]) -> None:
    """Журнал — не повод подменить итог отправки: его сбой только в лог (сообщение уже ушло)."""
    from botapp.users import services

    try:
        services.chat_log_record_many(rows=rows)
    except Exception:
        logger.exception("chat log: %s outgoing rows not recorded", len(rows))


def bot_reset() -> None:
    """Забыть Bot потока (тесты меняют TELEGRAM_API_BASE_URL между серверами)."""
    if getattr(_local, "bot", None) is not None:
        _local.loop.run_until_complete(_local.bot.shutdown())
        _local.loop.close()
        _local.bot = None
