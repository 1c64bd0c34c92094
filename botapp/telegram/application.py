"""Приложение python-telegram-bot: одно на цикл событий, создаётся лениво под замком.

HTTP-клиент PTB привязан к своему циклу, поэтому приложение живёт в словаре
«цикл → Application». У Django ASGI нет lifespan (API_NOTES §0.6); его обрабатывает
PathDispatcher (botapp/http/lean.py) и зовёт warm_up до первого апдейта.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from contextvars import ContextVar
from typing import Any, NamedTuple

from django.conf import settings
from django.utils import translation
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, CallbackContext, ContextTypes, ExtBot

from botapp.models import ConversationState, TelegramUser

logger = logging.getLogger(__name__)


class BotContext(CallbackContext[ExtBot[str], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Контекст апдейта; db_user заполняет предобработчик (группа -1) для всех следующих.

    conversation — шаг диалога на момент прихода апдейта, если вебхук прочитал его вместе с
    захватом (conversation_known); обработчик, который сам меняет шаг, читает его заново.
    """

    db_user: TelegramUser | None = None
    conversation: ConversationState | None = None
    conversation_known: bool = False


BotApplication = Application[Any, BotContext, Any, Any, Any, Any]

_applications: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BotApplication] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

# Соединений с Bot API на процесс. Веб упирается в общий лимит Telegram (~30 сообщений/с на
# бота), одновременно в полёте единицы запросов — 8 хватает с запасом.
BOT_API_CONNECTIONS = 8


def build_application() -> BotApplication:
    from botapp.telegram.handlers import register_handlers
    from botapp.telegram.httpclient import AiohttpRequest
    from botapp.telegram.sender import SharedRateLimiter

    base = settings.TELEGRAM_API_BASE_URL
    application = (
        ApplicationBuilder()
        .token(settings.TELEGRAM_BOT_TOKEN)
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .updater(None)
        .context_types(ContextTypes(context=BotContext))
        # В вебе можно подождать очереди пару секунд; дольше — ответ отложится
        .rate_limiter(SharedRateLimiter(max_wait=2.0))
        # Bot API — через aiohttp (httpx стоил ~40 % CPU веба); ожидание свободного соединения —
        # не дольше, чем очереди лимитера
        .request(AiohttpRequest(pool_size=BOT_API_CONNECTIONS, pool_timeout=2.0))
        .build()
    )
    register_handlers(application)
    return application


async def get_application() -> BotApplication:
    loop = asyncio.get_running_loop()
    application = _applications.get(loop)
    if application is not None:
        return application
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:
        application = _applications.get(loop)
        if application is None:
            application = build_application()
            await application.initialize()
            from botapp.telegram.commands import publish_commands_once

            await publish_commands_once(application.bot)
            _applications[loop] = application
    return application


async def warm_up() -> None:
    """Старт процесса: приложение PTB (getMe, команды) — до первого апдейта, а не в нём.

    В песочнице Bot API — этот же процесс, который ещё не слушает порт: там лениво, как раньше.
    """
    if settings.TELEGRAM_SANDBOX:
        return
    await asyncio.wait_for(get_application(), timeout=10)


# Пользователь (и его шаг диалога), уже записанный и прочитанный вебхуком вместе с захватом
# апдейта (inbox_ingest): предобработчик берёт их отсюда, а не ходит в БД второй раз
_prefetched: ContextVar[Prefetched | None] = ContextVar("nb_prefetched_user", default=None)


class Prefetched(NamedTuple):
    update_id: int
    user: TelegramUser
    conversation: ConversationState | None
    conversation_known: bool


def prefetched(update: Update) -> Prefetched | None:
    value = _prefetched.get()
    return value if value is not None and value.update_id == update.update_id else None


async def process_update(
    update: Update,
    user: TelegramUser | None = None,
    conversation: ConversationState | None = None,
    *,
    conversation_known: bool = False,
) -> None:
    """Обработать апдейт на месте; исключения обработчиков уходят в error handler PTB."""
    application = await get_application()
    value = Prefetched(update.update_id, user, conversation, conversation_known) if user is not None else None
    token = _prefetched.set(value)
    try:
        await application.process_update(update)
    finally:
        _prefetched.reset(token)
        translation.deactivate()


async def process_update_data(data: dict[str, Any]) -> None:
    application = await get_application()
    await process_update(Update.de_json(data, application.bot))
