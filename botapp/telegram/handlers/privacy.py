"""/delete_me: подтверждение, затем удаление личных данных."""

from __future__ import annotations

from django.utils.translation import gettext as _
from telegram import Update

from botapp.generation import retention
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.users import services


async def delete_me(update: Update, context: BotContext) -> None:
    """/delete_me: спросить подтверждение."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _(
            "This erases your prompts, results, media and chat history, and we stop sending you "
            "announcements. Your token balance stays, and its history is kept anonymised. Continue?"
        ),
        reply_markup=keyboards.delete_confirm_keyboard(),
    )


async def delete_me_answer(update: Update, context: BotContext) -> None:
    """Кнопка del:yes / del:no."""
    query = update.callback_query
    assert query is not None and context.db_user is not None
    await query.answer()
    if query.data == "del:yes":
        await db(retention.user_media_erase)(user=context.db_user)
        await db(services.user_delete_data)(user=context.db_user)
        await query.edit_message_text(_("Your data has been deleted. Send /start to begin again."))
    else:
        await query.edit_message_text(_("Nothing was deleted."))
