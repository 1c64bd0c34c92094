"""/support: следующее сообщение пользователя уходит в ветку поддержки."""

from __future__ import annotations

from django.utils.translation import gettext as _
from telegram import Update

from botapp.models import ChatLogEntry
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.users import services

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
    await db(_mark_last_as_support)(context.db_user.pk, message.message_id)
    await db(services.conversation_set)(user=context.db_user, state="")
    await message.reply_text(
        _("Thank you! Support will answer here as soon as possible."), reply_markup=keyboards.main_menu()
    )
