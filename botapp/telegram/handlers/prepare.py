"""Предобработка каждого апдейта (группа -1): пользователь, язык, бан, журнал входящих."""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import ApplicationHandlerStop

from botapp.models import ConversationState, TelegramUser
from botapp.telegram.application import BotContext, prefetched
from botapp.telegram.dbcall import db
from botapp.telegram.sender import remember_blocked
from botapp.users import services

_MEDIA_FIELDS = ("photo", "document", "video", "animation", "voice", "audio", "sticker")


def ingest_fields(update: Update) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Что записать для апдейта: поля пользователя и входящее личное сообщение (или None).

    Вебхук пишет их вместе с захватом апдейта (inbox_ingest), предобработчик — если не записано.
    """
    tg_user = update.effective_user
    if update.my_chat_member or tg_user is None or tg_user.is_bot:
        return None, None
    message = update.effective_message
    private = update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE
    return _user_fields(tg_user), (_incoming(update) if message and private else None)


def _user_fields(tg_user: User) -> dict[str, Any]:
    return {
        "telegram_id": tg_user.id,
        "first_name": tg_user.first_name or "",
        "last_name": tg_user.last_name or "",
        "username": tg_user.username or "",
        "language_code": tg_user.language_code or "",
        "is_premium": bool(tg_user.is_premium),
    }


async def prepare_update(update: Update, context: BotContext) -> None:
    """Любой апдейт: upsert пользователя, активировать его язык, отсечь забаненных."""
    if update.my_chat_member:
        await _chat_member_changed(update)
        raise ApplicationHandlerStop
    ready = prefetched(update)
    if ready is not None:
        user = ready.user
        context.conversation, context.conversation_known = ready.conversation, ready.conversation_known
    else:
        fields, incoming = ingest_fields(update)
        if fields is None:
            return
        # Один поход в БД на апдейт: обновить пользователя и записать входящее в журнал
        user = await db(_record_update)(fields=fields, incoming=incoming)
    private = update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE
    context.db_user = user
    translation.activate(user.effective_language)
    if user.is_banned:
        await _banned(update, user, private=private)


async def _banned(update: Update, user: TelegramUser, *, private: bool) -> None:
    """Забаненный: вежливое сообщение раз в сутки, остальное не выполняется — кроме денег."""
    message = update.effective_message
    if message and (message.successful_payment or message.refunded_payment):
        # Звёзды уже списаны (бан мог случиться после pre_checkout) или возвращены: токены двигаем всё равно
        return
    if update.pre_checkout_query:
        # На pre_checkout нужно ответить всегда (≤10 с), иначе оплата зависнет у пользователя
        await update.pre_checkout_query.answer(
            ok=False, error_message=_("Payments are not available for this account. Contact /support.")
        )
    elif update.callback_query:
        # Без ответа у кнопки крутится часик; ответ молча — сообщение о бане приходит только на сообщения
        await update.callback_query.answer()
    elif private and message and await db(services.user_ban_notice_due)(user=user):
        # Отметку «раз в сутки» ставим, только когда сообщение и правда уйдёт (не на обращение в группе)
        await message.reply_text(
            _("Your access to the bot is suspended. Contact support if this is a mistake.")
        )
    raise ApplicationHandlerStop


async def conversation_on_arrival(context: BotContext) -> ConversationState:
    """Шаг диалога на момент прихода апдейта: прочитанный вебхуком вместе с захватом, иначе — из БД.

    Только до первой записи шага в этом апдейте: после conversation_set он устарел.
    """
    assert context.db_user is not None
    if context.conversation_known:
        return context.conversation or ConversationState(user=context.db_user, state="", data={})
    return await db(services.conversation_get)(user=context.db_user)


async def _chat_member_changed(update: Update) -> None:
    change = update.my_chat_member
    assert change is not None
    if change.chat.type != ChatType.PRIVATE:
        return
    blocked = change.new_chat_member.status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT)
    await db(_chat_member_record)(fields=_user_fields(change.from_user), blocked=blocked)
    await remember_blocked(update.get_bot(), change.chat.id, blocked=blocked)


def _chat_member_record(*, fields: dict[str, Any], blocked: bool) -> None:
    """Пользователь есть в базе, даже если первым его апдейтом была блокировка бота."""
    services.user_upsert_from_telegram(**fields)
    services.user_set_blocked(telegram_id=fields["telegram_id"], blocked=blocked)


def _record_update(*, fields: dict[str, Any], incoming: dict[str, Any] | None) -> TelegramUser:
    user = services.user_upsert_from_telegram(**fields)
    if incoming is not None:
        services.chat_log_record(telegram_id=user.telegram_id, direction="in", **incoming)
    return user


def _incoming(update: Update) -> dict[str, Any]:
    """Поля журнала для входящего сообщения: текст или подпись, вид медиа и file_id."""
    message = update.effective_message
    assert message is not None
    media_type = next((field for field in _MEDIA_FIELDS if getattr(message, field, None)), "")
    file_id = ""
    if media_type == "photo":
        file_id = message.photo[-1].file_id
    elif media_type:
        file_id = getattr(message, media_type).file_id
    return {
        "text": message.text or message.caption or "",
        "media_type": media_type,
        "file_id": file_id,
        "message_id": message.message_id,
    }
