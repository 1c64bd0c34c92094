"""Залпы sendMessage в эмулятор: в процессе теста и из нескольких ОС-процессов сразу.

Процессы нужны залпу «500 в разные чаты» при 10× лимитах: секундный допуск эмулятора при 300/с
пропускает всплеск в 300 сообщений, и залп без лимитера отсекается, только если все 500 приходят
быстрее ~0.66 с. Из одного процесса теста залп приходил за 0.18–0.3 с, а в одном полном прогоне —
дольше 0.66 с (каждый вызов — Python-код PTB и новое соединение), и проверка теряла смысл. Четыре
процесса с заранее открытыми соединениями и общим стартом приносят его за 0.1–0.2 с (145–185 × 429).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
from django.conf import settings
from telegram import Bot
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from botapp.telegram.httpclient import AiohttpRequest
from botapp.telegram.sender import SharedRateLimiter


def bot_for(base: str, limiter: SharedRateLimiter | None, connections: int = 256) -> Bot:
    """Бот с тем же клиентом, что у веба и воркеров; limiter=None — без лимитера."""
    api = f"{base}/sandbox/api"
    kwargs: dict[str, Any] = {
        "base_url": f"{api}/bot",
        "base_file_url": f"{api}/file/bot",
        # Сотни одновременных отправок, а эмулятор в одном процессе отвечает не сразу: большой пул
        # и долгие таймауты
        "request": AiohttpRequest(pool_size=connections, pool_timeout=60, read_timeout=60, write_timeout=60),
    }
    if limiter is None:
        return Bot(settings.TELEGRAM_BOT_TOKEN, **kwargs)
    return ExtBot(settings.TELEGRAM_BOT_TOKEN, rate_limiter=limiter, **kwargs)


async def _send_all(bot: Bot, chats: list[int]) -> list[BaseException | None]:
    """Все сообщения разом; исключение каждого вызова — на его месте, None — доставлено."""
    results = await asyncio.gather(
        *(bot.send_message(chat, f"hello {i}") for i, chat in enumerate(chats)), return_exceptions=True
    )
    return [r if isinstance(r, BaseException) else None for r in results]


async def burst(bot: Bot, chats: list[int]) -> list[BaseException | None]:
    async with bot:
        return await _send_all(bot, chats)


def _all_ready(key: str, processes: int) -> None:
    """Ждать, пока прогреются все процессы: один прогревается дольше других, и без этого залпы расходились."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.incr(key)
    client.expire(key, 300)
    deadline = time.monotonic() + 60
    while int(client.get(key) or 0) < processes:
        if time.monotonic() > deadline:
            raise TimeoutError("the other burst processes did not warm up")
        time.sleep(0.002)


def send_burst(base: str, chats: list[int], limited: bool, ready_key: str, processes: int) -> dict[str, Any]:
    """Цель для run_in_processes: открыть по соединению на сообщение, дождаться соседей, отправить всё разом.

    Соединения открывают вызовы getMe (лимиты их не касаются), и залп не ждёт установки сотен
    соединений; общий счётчик готовых в Redis выравнивает старт залпов всех процессов.
    """

    async def main() -> list[BaseException | None]:
        limiter = SharedRateLimiter(max_wait=60) if limited else None
        bot = bot_for(base, limiter, connections=len(chats))
        async with bot:
            await asyncio.gather(*(bot.get_me() for _ in chats))
            _all_ready(ready_key, processes)
            # Эмулятор ещё дописывает хвост прогрева (журнал, закрытие соединений БД), и первые залпы
            # вставали бы в очередь за ним, а последние приходили бы позже на сотни миллисекунд
            await asyncio.sleep(1)
            return await _send_all(bot, chats)

    results = asyncio.run(main())
    return {
        "sent": sum(1 for r in results if r is None),
        "retry_after": sum(1 for r in results if isinstance(r, RetryAfter)),
        "other": [repr(r) for r in results if r is not None and not isinstance(r, RetryAfter)],
    }
