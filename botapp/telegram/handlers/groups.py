"""Группы: отвечаем только на обращения к боту и зовём в личный чат."""

from __future__ import annotations

from django.utils.translation import gettext as _
from telegram import ReplyParameters, Update

from botapp.telegram.application import BotContext


def addressed_to_bot(update: Update, bot_username: str, bot_id: int) -> bool:
    message = update.effective_message
    if message is None:
        return False
    text = message.text or message.caption or ""
    if text.startswith("/"):
        return True
    if bot_username and f"@{bot_username}".lower() in text.lower():
        return True
    reply = message.reply_to_message
    return bool(reply and reply.from_user and reply.from_user.id == bot_id)


async def group_message(update: Update, context: BotContext) -> None:
    """Сообщение в группе: если обращено к боту — ссылка на личный чат, иначе молчим."""
    if not addressed_to_bot(update, context.bot.username or "", context.bot.id):
        return
    assert update.effective_message is not None
    link = f"https://t.me/{context.bot.username}?start=group"
    message = update.effective_message
    # Цитируем обращение, но отвечаем и тогда, когда его уже удалили
    reply_to = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    await context.bot.send_message(
        message.chat.id, _("I work in a private chat: {link}").format(link=link), reply_parameters=reply_to
    )
