"""/support: следующее сообщение пользователя уходит в ветку поддержки."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Update
from telegram.error import TelegramError

from botapp.models import ChatLogEntry
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.handlers.prepare import conversation_on_arrival
from botapp.telegram.sender import RecipientBlocked, SendDeferred
from botapp.users import services

if TYPE_CHECKING:
    from dashboard.services.support import SupportAlert

logger = logging.getLogger(__name__)

SUPPORT_STATE = "support"


async def open_support(update: Update, context: BotContext) -> None:
    """/support, /paysupport или 🆘: ждём сообщение для поддержки."""
    assert update.effective_message is not None and context.db_user is not None
    topic = (
        "payment" if update.effective_message.text and "paysupport" in update.effective_message.text else ""
    )
    await db(services.conversation_set)(user=context.db_user, state=SUPPORT_STATE, data={"topic": topic})
    await update.effective_message.reply_text(
        _("Write your question in one message (you can attach a photo). /cancel to go back.")
    )


def _mark_last_as_support(user_id: int, message_id: int) -> None:
    ChatLogEntry.objects.filter(user_id=user_id, message_id=message_id, direction="in").update(
        is_support=True
    )


async def support_message(update: Update, context: BotContext) -> None:
    """Сообщение в состоянии «поддержка»: помечаем в журнале и подтверждаем."""
    message = update.effective_message
    assert message is not None and context.db_user is not None
    from dashboard.services.support import support_message_received

    state = await conversation_on_arrival(context)
    await db(_mark_last_as_support)(context.db_user.pk, message.message_id)
    await db(services.conversation_set)(user=context.db_user, state="")
    alert = await db(support_message_received)(user=context.db_user, topic=state.data.get("topic", ""))
    await message.reply_text(
        _("Thank you! Support will answer here as soon as possible."), reply_markup=keyboards.main_menu()
    )
    if alert.staff_chat_ids:
        await _alert_staff(context, alert)


async def _alert_staff(context: BotContext, alert: SupportAlert) -> None:
    """Оповещение привязанным сотрудникам; недоставленное не мешает пользователю."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    link = f"{base}/dashboard/support/{alert.thread_id}/" if base else ""
    # Только номер ветки и ссылка, без текста и имени клиента: отправитель пишет исходящее в журнал переписки
    # сотрудника, и /delete_me клиента эту копию не стёр бы; само обращение — в панели
    with translation.override(settings.LANGUAGE_CODE):
        notice = _("🆘 New support message, thread #{thread}. Read and reply in the dashboard.").format(
            thread=alert.thread_id
        )
    for chat_id in alert.staff_chat_ids:
        try:
            await context.bot.send_message(chat_id, f"{notice}\n{link}".strip())
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
