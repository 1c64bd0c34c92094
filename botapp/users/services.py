"""Сервисы пользователей. Синхронные: Telegram-обработчики зовут их через sync_to_async."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from botapp.models import ChatLogEntry, ConversationState, Language, TelegramUser

BAN_NOTICE_EVERY = timedelta(days=1)


def user_upsert_from_telegram(
    *,
    telegram_id: int,
    first_name: str = "",
    last_name: str = "",
    username: str = "",
    language_code: str = "",
    is_premium: bool = False,
) -> TelegramUser:
    """Создать или обновить пользователя по данным апдейта; заодно снять флаг блокировки."""
    fields: dict[str, Any] = {
        "first_name": first_name[:256],
        "last_name": last_name[:256],
        "username": username[:64],
        "language_code": language_code[:16],
        "is_premium": is_premium,
        "is_blocked": False,
    }
    user, _ = TelegramUser.objects.update_or_create(telegram_id=telegram_id, defaults=fields)
    return user


def user_set_blocked(*, telegram_id: int, blocked: bool) -> None:
    """my_chat_member или 403 при отправке: пользователь заблокировал/разблокировал бота."""
    TelegramUser.objects.filter(telegram_id=telegram_id).update(is_blocked=blocked)


def user_set_language(*, user: TelegramUser, language: str) -> TelegramUser:
    user.language = Language(language)
    user.save(update_fields=["language"])
    return user


def user_toggle_setting(*, user: TelegramUser, name: str) -> TelegramUser:
    """Переключить булеву настройку из /settings (список разрешённых — здесь)."""
    if name not in ("send_originals_as_files", "skip_confirmation"):
        raise ValueError(name)
    setattr(user, name, not getattr(user, name))
    user.save(update_fields=[name])
    return user


def user_remember_start_payload(*, user: TelegramUser, payload: str) -> None:
    """ref_<code> / promo_<code> сохраняются для биллинга; прочее игнорируется."""
    if payload.startswith(("ref_", "promo_")) and not user.start_payload:
        user.start_payload = payload[:64]
        user.save(update_fields=["start_payload"])


def user_ban_notice_due(*, user: TelegramUser) -> bool:
    """Забаненному — одно вежливое сообщение в сутки; атомарно, без гонок между процессами."""
    now = timezone.now()
    updated = (
        TelegramUser.objects.filter(pk=user.pk)
        .exclude(ban_notice_at__gt=now - BAN_NOTICE_EVERY)
        .update(ban_notice_at=now)
    )
    return updated == 1


def conversation_get(*, user: TelegramUser) -> ConversationState:
    state, _ = ConversationState.objects.get_or_create(user=user)
    return state


def conversation_set(*, user: TelegramUser, state: str, data: dict[str, Any] | None = None) -> None:
    ConversationState.objects.update_or_create(user=user, defaults={"state": state, "data": data or {}})


def chat_log_record(
    *,
    telegram_id: int,
    direction: str,
    text: str = "",
    media_type: str = "",
    file_id: str = "",
    message_id: int | None = None,
    is_support: bool = False,
) -> None:
    user = TelegramUser.objects.filter(telegram_id=telegram_id).only("pk").first()
    if user is None:
        return
    ChatLogEntry.objects.create(
        user=user,
        direction=direction,
        text=text,
        media_type=media_type,
        file_id=file_id,
        message_id=message_id,
        is_support=is_support,
    )


def anonymised_id(telegram_id: int) -> str:
    return "deleted-" + hashlib.sha256(str(telegram_id).encode()).hexdigest()[:12]


@transaction.atomic
def user_delete_data(*, user: TelegramUser) -> None:
    """/delete_me: стереть личное (переписку, состояние, имена); строки учёта остаются обезличенными.

    Следующие задачи расширяют удаление своими данными (медиа, e-mail для оплаты).
    """
    ChatLogEntry.objects.filter(user=user).delete()
    ConversationState.objects.filter(user=user).delete()
    TelegramUser.objects.filter(pk=user.pk).update(
        first_name="",
        last_name="",
        username="",
        start_payload="",
        language="",
    )
