"""Регистрация вебхука у Telegram (для команд set_webhook / webhook_info / delete_webhook)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from telegram import Bot

# Типы апдейтов, которые бот обрабатывает; остальное Telegram нам не шлёт. Правки сообщений
# (edited_message) — нет: правка промпта не должна заводить новую карточку или повторять /start
ALLOWED_UPDATES = ("message", "callback_query", "pre_checkout_query", "my_chat_member")
ALLOWED_PORTS = (443, 80, 88, 8443)


class WebhookConfigError(Exception):
    pass


def webhook_url(*, allow_insecure: bool = False) -> str:
    """PUBLIC_BASE_URL + /telegram/webhook/; Telegram принимает только https и порты 443/80/88/8443."""
    base = settings.PUBLIC_BASE_URL
    if not base:
        raise WebhookConfigError("PUBLIC_BASE_URL is not set")
    parts = urlsplit(base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not allow_insecure:
        if parts.scheme != "https":
            raise WebhookConfigError("PUBLIC_BASE_URL must be https (use --allow-insecure for local tests)")
        if port not in ALLOWED_PORTS:
            raise WebhookConfigError(f"port {port} is not one of {ALLOWED_PORTS} (use --allow-insecure)")
    return f"{base.rstrip('/')}/telegram/webhook/"


def _bot() -> Bot:
    base = settings.TELEGRAM_API_BASE_URL
    return Bot(settings.TELEGRAM_BOT_TOKEN, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")


async def webhook_set(*, url: str, max_connections: int, drop_pending_updates: bool) -> bool:
    if not settings.TG_WEBHOOK_SECRET:
        raise WebhookConfigError("TG_WEBHOOK_SECRET is not set")
    async with _bot() as bot:
        return await bot.set_webhook(
            url=url,
            secret_token=settings.TG_WEBHOOK_SECRET,
            allowed_updates=list(ALLOWED_UPDATES),
            max_connections=max_connections,
            drop_pending_updates=drop_pending_updates,
        )


async def webhook_info() -> dict[str, Any]:
    async with _bot() as bot:
        info = await bot.get_webhook_info()
    return {
        "url": info.url,
        "pending_update_count": info.pending_update_count,
        "max_connections": info.max_connections,
        "allowed_updates": list(info.allowed_updates or ()),
        "last_error_date": info.last_error_date.isoformat() if info.last_error_date else None,
        "last_error_message": info.last_error_message,
    }


async def webhook_delete(*, drop_pending_updates: bool) -> bool:
    async with _bot() as bot:
        return await bot.delete_webhook(drop_pending_updates=drop_pending_updates)
