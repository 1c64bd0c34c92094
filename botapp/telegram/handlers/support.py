"""/support: следующее сообщение пользователя уходит в ветку поддержки, как и reply на ответ поддержки."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Message, Update
from telegram.error import TelegramError

from botapp.models import ChatLogEntry, ConversationState, TelegramUser
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.sender import STAFF_ALERT, RecipientBlocked, SendDeferred
from botapp.users import services

if TYPE_CHECKING:
    from dashboard.services.support import SupportAlert

logger = logging.getLogger(__name__)

SUPPORT_STATE = "support"
# Альбом, открывший обращение: его остальные фото идут в ту же ветку (шаг уже закрыт первым фото)
ALBUM_KEY = "support_album"
# Фото одного альбома приходят за секунды; отметка «спасибо уже было» живёт с запасом
ALBUM_MARK_S = 600


async def open_support(update: Update, context: BotContext) -> None:
    """/support, /paysupport или 🆘: ждём сообщение для поддержки."""
    assert update.effective_message is not None and context.db_user is not None
    topic = (
        "payment" if update.effective_message.text and "paysupport" in update.effective_message.text else ""
    )
    await db(services.conversation_set)(user=context.db_user, state=SUPPORT_STATE, data={"topic": topic})
    if topic == "payment":
        # Пришёл с вопросом о деньгах: сказать, что адрес верный, и попросить скриншот оплаты
        text = _(
            "Questions about payments and refunds: write them in one message "
            "(you can attach a screenshot). /cancel to go back."
        )
    else:
        text = _("Write your question in one message (you can attach a photo). /cancel to go back.")
    await update.effective_message.reply_text(text)


def takes(state: ConversationState, media_group_id: str | None) -> bool:
    """Сообщение уходит в поддержку: шаг открыт или это следующее фото альбома, открывшего обращение."""
    album = state.data.get(ALBUM_KEY)
    return state.state == SUPPORT_STATE or bool(
        media_group_id and not state.state and album == media_group_id
    )


def _is_support_reply(*, user: TelegramUser, message_id: int) -> bool:
    return ChatLogEntry.objects.filter(
        user=user, direction=ChatLogEntry.Direction.OUT, is_support=True, message_id=message_id
    ).exists()


async def replies_to_support(message: Message, context: BotContext) -> bool:
    """Ответ Telegram (reply) на сообщение сотрудника: это письмо в поддержку, а не запрос на картинку."""
    assert context.db_user is not None
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return False
    return await db(_is_support_reply)(user=context.db_user, message_id=replied.message_id)


@dataclass(frozen=True)
class _Taken:
    first: bool
    alert: SupportAlert


def _support_record(*, user: TelegramUser, message_id: int, album: str, reply: bool) -> _Taken | None:
    """Под блокировкой строки шага: закрыть шаг (или узнать фото того же альбома) и записать обращение.

    Фото альбома приходят отдельными апдейтами и параллельно: блокировка решает, какое из них первое
    (ему — подтверждение), остальные молча дописываются в ту же ветку. None — шаг уже закрыт иначе.
    reply — ответ на сообщение поддержки: в ветку и без открытого шага.
    """
    from dashboard.services.support import support_message_received

    with transaction.atomic():
        services.conversation_ensure(user=user)
        state = ConversationState.objects.select_for_update().get(user=user)
        topic = state.data.get("topic", "")
        if takes(state, album):
            first = closes = state.state == SUPPORT_STATE
        elif reply:
            # Чужой шаг (черновик, промокод) не трогаем; в пустом помним альбом, как после /support.
            # При чужом шаге помнить альбом в шаге негде: «спасибо» одно на альбом — по отметке в кэше
            closes = bool(album) and not state.state
            first = closes or not album or cache.add(f"support-album:{user.pk}:{album}", True, ALBUM_MARK_S)
        else:
            return None
        if closes:
            # Шаг закрыт, но альбом помним: его следующие фото — тоже в поддержку, а не в генерацию
            state.state, state.data = "", ({ALBUM_KEY: album, "topic": topic} if album else {})
            state.save(update_fields=["state", "data", "updated_at"])
        ChatLogEntry.objects.filter(user=user, message_id=message_id, direction="in").update(is_support=True)
    return _Taken(first=first, alert=support_message_received(user=user, topic=topic))


async def support_message(update: Update, context: BotContext, *, reply: bool = False) -> bool:
    """Сообщение в шаге «поддержка» (или фото того же альбома, или ответ на сообщение поддержки):
    помечаем в журнале, подтверждаем один раз.

    False — шаг успели закрыть (например, /cancel параллельно): сообщение не для поддержки.
    """
    message = update.effective_message
    assert message is not None and context.db_user is not None
    taken = await db(_support_record)(
        user=context.db_user, message_id=message.message_id, album=message.media_group_id or "", reply=reply
    )
    if taken is None:
        return False
    context.conversation, context.conversation_known = None, False  # шаг записан: прочитанный устарел
    if taken.first:
        await message.reply_text(
            _("Thank you! Support will answer here as soon as possible."), reply_markup=keyboards.main_menu()
        )
    if taken.alert.staff_chat_ids:
        await _alert_staff(context, taken.alert, str(context.db_user), message.text or message.caption or "")
    return True


async def _alert_staff(context: BotContext, alert: SupportAlert, who: str, text: str) -> None:
    """Оповещение привязанным сотрудникам; недоставленное не мешает пользователю."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    link = f"{base}/dashboard/support/{alert.thread_id}/" if base else ""
    with translation.override(settings.LANGUAGE_CODE):
        notice = _("🆘 New support message from {user}:\n{text}").format(user=who, text=text[:500] or "📎")
    for chat_id in alert.staff_chat_ids:
        try:
            # Не в журнал переписки сотрудника: там текст клиента пережил бы его /delete_me
            await context.bot.send_message(chat_id, f"{notice}\n{link}".strip(), rate_limit_args=STAFF_ALERT)
        except (TelegramError, RecipientBlocked, SendDeferred):
            logger.warning("support alert to staff %s not delivered", chat_id, exc_info=True)


async def link_staff(update: Update, context: BotContext, code: str) -> None:
    """/start staff_<код>: привязать этот Telegram к сотруднику панели."""
    from dashboard.services.staff_link import staff_link_confirm

    assert update.effective_message is not None and update.effective_user is not None
    profile = await db(staff_link_confirm)(code=code, telegram_id=update.effective_user.id)
    if profile is None:
        await update.effective_message.reply_text(
            _("This staff link is invalid or has expired. Create a new one in the dashboard.")
        )
        return
    await update.effective_message.reply_text(
        _(
            "Done: this Telegram account is linked to the staff member {name}. "
            "New support messages will arrive here."
        ).format(name=profile.user.get_username())
    )
