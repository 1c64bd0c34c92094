"""Исходящие вызовы Bot API: общий лимитер, RetryAfter, заблокировавшие бота, журнал переписки.

Подключается к PTB как rate_limiter, поэтому через него проходит каждый вызов —
и ответы обработчиков в вебе, и отправки из воркеров.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from django.utils import timezone
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter
from telegram.ext import BaseRateLimiter

from botapp.ops import metrics
from botapp.telegram.dbcall import db
from botapp.telegram.ratelimit import MarkedBlocked, SendLimiter, broadcast_bucket
from botapp.users import services

logger = logging.getLogger(__name__)

# Методы, на которые действуют лимиты Telegram на сообщения
LIMITED_METHODS = frozenset(
    {
        "sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendAnimation", "sendMediaGroup",
        "sendInvoice", "copyMessage", "forwardMessage", "editMessageText", "editMessageCaption",
        "editMessageMedia", "editMessageReplyMarkup",
    }
)  # fmt: skip
# Всё, что появляется в чате у пользователя, попадает в журнал переписки (и счёт тоже)
LOGGED_METHODS = frozenset(
    {
        "sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendAnimation", "sendMediaGroup",
        "sendInvoice",
    }
)  # fmt: skip
EDIT_METHODS = frozenset(
    {"editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup"}
)


class SendDeferred(Exception):
    """Отправка сейчас невозможна без долгого ожидания: воркер переназначает задачу на retry_after."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.2f}s")
        self.retry_after = retry_after


class RecipientBlocked(Exception):
    """Пользователь заблокировал бота: слать бессмысленно, is_blocked в БД выставлен."""


def _blocked(exc: Forbidden) -> bool:
    text = str(exc).lower()
    return "blocked" in text or "deactivated" in text or "kicked" in text


def _outgoing_rows(chat_id: Any, result: Any) -> list[dict[str, Any]]:
    """Строки журнала для ответа Bot API (одно сообщение или альбом); created_at — момент отправки."""
    messages = result if isinstance(result, list) else [result]
    now = timezone.now()
    rows = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        media_type, file_id = "", ""
        for field in ("photo", "document", "video", "animation"):
            if message.get(field):
                media_type = field
                item = message[field][-1] if field == "photo" else message[field]
                file_id = item.get("file_id", "")
        text = message.get("text") or message.get("caption") or ""
        if message.get("invoice"):
            # У счёта нет текста: поддержке видно, что и на какую сумму выставлено
            media_type, text = "invoice", _invoice_text(message["invoice"])
        rows.append(
            {
                "telegram_id": int(chat_id),
                "direction": "out",
                "text": text,
                "media_type": media_type,
                "file_id": file_id,
                "message_id": message.get("message_id"),
                "created_at": now,
            }
        )
    return rows


def _invoice_text(invoice: dict[str, Any]) -> str:
    amount = f"{invoice.get('total_amount', '')} {invoice.get('currency', '')}".strip()
    return "\n".join(part for part in (invoice.get("title"), invoice.get("description"), amount) if part)


class OutgoingLog:
    """Исходящие одного апдейта вебхука: пишутся в журнал вместе с отметкой done, а не походом на каждое.

    Вебхук закрывает его перед записью; то, что отправлено после (задача, пережившая
    обработчик), пишется сразу, как вне вебхука.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.open = True

    def close(self) -> list[dict[str, Any]]:
        self.open = False
        return self.rows


outgoing_log: ContextVar[OutgoingLog | None] = ContextVar("nb_outgoing_log", default=None)


async def _log_outgoing(chat_id: Any, result: Any) -> None:
    rows = _outgoing_rows(chat_id, result)
    collected = outgoing_log.get()
    if collected is not None and collected.open:
        collected.rows.extend(rows)
        return
    await db(services.chat_log_record_many)(rows=rows)


def _private_chat(chat_id: Any) -> int | None:
    """id личного чата (он же id пользователя); у групп и @username отметки «заблокировал» нет."""
    if chat_id is None or str(chat_id).startswith(("-", "@")):
        return None
    try:
        return int(chat_id)
    except ValueError:
        return None


async def remember_blocked(bot: Any, chat_id: int, *, blocked: bool) -> None:
    """my_chat_member: пользователь заблокировал бота или вернулся — отметка отправителя тоже."""
    limiter = getattr(bot, "rate_limiter", None)
    if isinstance(limiter, SharedRateLimiter):
        await limiter.remember_blocked(chat_id, blocked=blocked)


# rate_limit_args вызова PTB: BROADCAST — массовая отправка со своим, меньшим лимитом
BROADCAST = "broadcast"
# STAFF_ALERT — оповещение сотруднику: несёт текст клиента, а журнал переписки — сотрудника; /delete_me
# клиента такую копию не нашёл бы, поэтому в журнал её не пишем (обращение и так в ветке панели)
STAFF_ALERT = "staff-alert"


class SharedRateLimiter(BaseRateLimiter[str]):
    """max_wait — сколько можно ждать очереди на месте (веб); больше — SendDeferred.

    sleep_on_retry=False (воркеры): любой 429 — сразу SendDeferred, задача переназначается
    на retry_after, а слот воркера не спит. Веб короткий 429 пережидает на месте: ответ
    пользователю важнее, а корутина спит бесплатно.
    """

    def __init__(self, *, max_wait: float, sleep_on_retry: bool = True) -> None:
        self.max_wait = max_wait
        self.sleep_on_retry = sleep_on_retry
        self.limiter = SendLimiter()

    async def initialize(self) -> None:
        return None

    async def remember_blocked(self, chat_id: int, *, blocked: bool) -> None:
        """Отметка для всех процессов; правда — is_blocked в БД, поэтому сбой Redis не ошибка."""
        try:
            await self.limiter.set_blocked(chat_id, blocked)
        except Exception:
            action = "set" if blocked else "clear"
            logger.warning("could not %s the blocked mark of a chat", action, exc_info=True)

    async def shutdown(self) -> None:
        await self.limiter.aclose()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id")
        private = _private_chat(chat_id)
        check_blocked = private is not None
        for attempt in range(3):
            if endpoint in LIMITED_METHODS:
                extra = [broadcast_bucket()] if rate_limit_args == BROADCAST else None
                try:
                    wait = await self.limiter.wait_turn(
                        chat_id, self.max_wait, extra, check_blocked=check_blocked
                    )
                except MarkedBlocked as exc:
                    # Отметка — кэш флага в БД; пользователь мог вернуться, а «member» потеряться
                    if private is None or await db(services.user_is_blocked)(telegram_id=private):
                        raise RecipientBlocked(f"chat {chat_id} has blocked the bot") from exc
                    await self.remember_blocked(private, blocked=False)
                    check_blocked = False
                    wait = await self.limiter.wait_turn(chat_id, self.max_wait, extra)
                if wait > 0:
                    raise SendDeferred(wait)
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                metrics.telegram_429_count(method=endpoint)
                told = exc.retry_after
                retry_after = told.total_seconds() if isinstance(told, timedelta) else float(told)
                if not self.sleep_on_retry or retry_after > self.max_wait or attempt == 2:
                    raise SendDeferred(retry_after) from exc
                await asyncio.sleep(retry_after)
                continue
            except ChatMigrated as exc:
                # Группа стала супергруппой: тот же запрос в новый чат
                data["chat_id"] = chat_id = exc.new_chat_id
                continue
            except BadRequest as exc:
                if endpoint in EDIT_METHODS and "message is not modified" in str(exc).lower():
                    # Двойное нажатие: второй апдейт правит сообщение тем, что уже на экране, —
                    # цель достигнута, извинение и событие ошибки были бы ложными
                    return True
                raise
            except Forbidden as exc:
                if private is not None and _blocked(exc):
                    await db(services.user_set_blocked)(telegram_id=private, blocked=True)
                    await self.remember_blocked(private, blocked=True)
                    raise RecipientBlocked(str(exc)) from exc
                raise
            metrics.telegram_send_count(method=endpoint)
            if endpoint in LOGGED_METHODS and private is not None and rate_limit_args != STAFF_ALERT:
                await _log_outgoing(chat_id, result)
            return result
        raise SendDeferred(1.0)
