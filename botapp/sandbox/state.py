"""Общие для эмулятора и сервисов песочницы операции над чатами и сообщениями."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from botapp.sandbox.errors import ApiError, bad_request
from botapp.sandbox.models import SandboxChat, SandboxMessage

_TOKEN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{1,128}$")
# Поля Message, которые хранятся в extra и отдаются как есть
MEDIA_FIELDS = ("photo", "document", "video", "animation", "audio", "voice", "invoice", "successful_payment")


@dataclass(frozen=True)
class BotIdentity:
    id: int

    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": "NanoBanana (sandbox)",
            "username": "nanobanana_sandbox_bot",
        }


def bot_from_token(token: str) -> BotIdentity | None:
    """Бот по токену вида <цифры>:<символы>; None — токен некорректен."""
    match = _TOKEN.match(token)
    return BotIdentity(int(match.group(1))) if match else None


def default_bot() -> BotIdentity:
    return bot_from_token(settings.TELEGRAM_BOT_TOKEN) or BotIdentity(1000000001)


def chat_get_or_create(chat_id: int, **defaults: Any) -> SandboxChat:
    """Бот может писать в любой числовой чат: личный (> 0) или группу (< 0, -100… — супергруппа)."""
    if chat_id > 0:
        base = {"type": SandboxChat.Type.PRIVATE, "first_name": f"User {chat_id}"}
    elif str(chat_id).startswith("-100"):
        base = {"type": SandboxChat.Type.SUPERGROUP, "title": f"Supergroup {chat_id}"}
    else:
        base = {"type": SandboxChat.Type.GROUP, "title": f"Group {chat_id}"}
    chat, _ = SandboxChat.objects.get_or_create(chat_id=chat_id, defaults={**base, **defaults})
    return chat


def chat_resolve(value: int | str, *, create: bool = True) -> SandboxChat:
    """chat_id запроса → чат; @username — только известный, иначе «chat not found»."""
    if isinstance(value, int):
        if value == 0:
            raise bad_request("chat not found")
        if create:
            return _reachable(chat_get_or_create(value))
        found = SandboxChat.objects.filter(chat_id=value).first()
    elif value.startswith("@") and len(value) > 1:
        found = SandboxChat.objects.filter(username__iexact=value[1:]).first()
    else:
        found = None
    if found is None:
        raise bad_request("chat not found")
    return _reachable(found)


def _reachable(chat: SandboxChat) -> SandboxChat:
    if chat.blocked_bot:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    return chat


def chat_dict(chat: SandboxChat) -> dict[str, Any]:
    data: dict[str, Any] = {"id": chat.chat_id, "type": chat.type}
    if chat.type == SandboxChat.Type.PRIVATE:
        data["first_name"] = chat.first_name or f"User {chat.chat_id}"
        if chat.last_name:
            data["last_name"] = chat.last_name
    else:
        data["title"] = chat.title or str(chat.chat_id)
    if chat.username:
        data["username"] = chat.username
    return data


def user_dict(chat: SandboxChat) -> dict[str, Any]:
    """Пользователь личного чата (его id совпадает с id чата)."""
    data: dict[str, Any] = {"id": chat.chat_id, "is_bot": False, "first_name": chat.first_name or "User"}
    if chat.last_name:
        data["last_name"] = chat.last_name
    if chat.username:
        data["username"] = chat.username
    if chat.language_code:
        data["language_code"] = chat.language_code
    return data


def next_message_ids(chat: SandboxChat, count: int = 1) -> list[int]:
    """Номера сообщений чата по порядку; строка чата заблокирована до конца транзакции."""
    SandboxChat.objects.filter(pk=chat.pk).update(last_message_id=F("last_message_id") + count)
    last = SandboxChat.objects.values_list("last_message_id", flat=True).get(pk=chat.pk)
    return list(range(last - count + 1, last + 1))


def message_create(
    *,
    chat: SandboxChat,
    direction: str,
    kind: str,
    message_id: int | None = None,
    text: str = "",
    caption: str = "",
    entities: list[Any] | None = None,
    reply_markup: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    media_group_id: str = "",
    reply_to_message_id: int | None = None,
    date: datetime | None = None,
) -> SandboxMessage:
    return SandboxMessage.objects.create(
        chat=chat,
        message_id=message_id if message_id is not None else next_message_ids(chat)[0],
        direction=direction,
        kind=kind,
        text=text,
        caption=caption,
        entities=entities or [],
        reply_markup=reply_markup,
        extra=extra or {},
        media_group_id=media_group_id,
        reply_to_message_id=reply_to_message_id,
        date=date or timezone.now(),
    )


def message_dict(message: SandboxMessage, *, bot: BotIdentity, nested: bool = False) -> dict[str, Any]:
    """Объект Message Bot API."""
    chat = message.chat
    data: dict[str, Any] = {
        "message_id": message.message_id,
        "date": int(message.date.timestamp()),
        "chat": chat_dict(chat),
    }
    if message.direction == SandboxMessage.Direction.BOT:
        data["from"] = bot.user()
    else:
        data["from"] = message.extra.get("from") or user_dict(chat)
    if message.text:
        data["text"] = message.text
        if message.entities:
            data["entities"] = message.entities
    if message.caption:
        data["caption"] = message.caption
        if message.entities:
            data["caption_entities"] = message.entities
    for name in MEDIA_FIELDS:
        if name in message.extra:
            data[name] = message.extra[name]
    if message.media_group_id:
        data["media_group_id"] = message.media_group_id
    # В Message попадает только inline-клавиатура; reply-клавиатура живёт у клиента
    if message.reply_markup and "inline_keyboard" in message.reply_markup:
        data["reply_markup"] = {"inline_keyboard": message.reply_markup["inline_keyboard"]}
    if message.edit_date:
        data["edit_date"] = int(message.edit_date.timestamp())
    if message.reply_to_message_id and not nested:
        replied = SandboxMessage.objects.filter(chat=chat, message_id=message.reply_to_message_id).first()
        if replied is not None:
            data["reply_to_message"] = message_dict(replied, bot=bot, nested=True)
    return data
