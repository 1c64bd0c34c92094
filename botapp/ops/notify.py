"""Оповещения операторов в TELEGRAM_NOTIFY_CHAT_ID с общим кулдауном через кэш."""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings
from django.core.cache import cache
from telegram import Bot
from telegram.error import TelegramError

logger = logging.getLogger(__name__)


def _send(text: str) -> bool:
    token, chat_id = settings.TELEGRAM_NOTIFY_TOKEN, settings.TELEGRAM_NOTIFY_CHAT_ID
    if not (token and chat_id):
        logger.warning("operator alert not sent (TELEGRAM_NOTIFY_CHAT_ID unset): %s", text)
        return False
    base = settings.TELEGRAM_API_BASE_URL

    async def go() -> None:
        async with Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot") as bot:
            await bot.send_message(chat_id=chat_id, text=text[:4000])

    try:
        asyncio.run(go())
    except (TelegramError, OSError) as exc:
        logger.error("operator alert failed: %s", exc)
        return False
    return True


# Кулдаун этого процесса на время, пока кэш (Redis) недоступен: ключ → момент отправки (monotonic)
_local_cooldown: dict[str, float] = {}


def _local_fresh(key: str) -> bool:
    now = time.monotonic()
    sent = _local_cooldown.get(key)
    if sent is not None and now - sent < settings.ALERT_COOLDOWN_S:
        return False
    _local_cooldown[key] = now
    return True


def alert_send(*, key: str, text: str) -> bool:
    """Отправить оповещение, если по этому ключу не слали в пределах кулдауна.

    cache.add атомарен в Redis: из нескольких процессов шлёт только первый. Кэш лежит — кулдаун этого
    процесса: оповещение важнее точного кулдауна, а сбой кэша не должен ронять того, кто оповещает
    (обработчик Telegram остался бы без извинения), и не должен слать то же каждую минуту.
    """
    try:
        fresh = cache.add(f"alert-cooldown:{key}", 1, timeout=settings.ALERT_COOLDOWN_S)
    except Exception:
        logger.warning("alert cooldown unavailable, using this process's cooldown for %s", key, exc_info=True)
        fresh = _local_fresh(key)
    if not fresh:
        return False
    return _send(text)


def alert_clear(*, key: str, text: str) -> bool:
    """Снять кулдаун и сообщить о восстановлении, если оповещение было (в кэше или, без кэша, здесь)."""
    was_local = _local_cooldown.pop(key, None) is not None
    try:
        was_shared = cache.get(f"alert-cooldown:{key}") is not None
        if was_shared:
            cache.delete(f"alert-cooldown:{key}")
    except Exception:
        logger.warning("alert cooldown unavailable while clearing %s", key, exc_info=True)
        was_shared = False
    if not (was_shared or was_local):
        return False
    return _send(text)
