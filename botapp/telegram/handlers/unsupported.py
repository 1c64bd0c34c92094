"""Что бот не понимает в личке (голос, видео, стикер, геометка, неизвестная /команда): короткий ответ."""

from __future__ import annotations

from django.utils.translation import gettext as _
from telegram import Update

from botapp.telegram.application import BotContext
from botapp.telegram.handlers import support
from botapp.telegram.handlers.prepare import conversation_on_arrival


async def unknown_command(update: Update, context: BotContext) -> None:
    """Неизвестная /команда в личке: молчание выглядело бы как сломанный бот."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _("I don't know this command. Everything I can do is in /help.")
    )


async def unsupported_message(update: Update, context: BotContext) -> None:
    """Голос, видео, стикер и прочее в личке: сказать, что понимаем; в шаге поддержки — как написать."""
    assert update.effective_message is not None
    state = await conversation_on_arrival(context)
    if state.state == support.SUPPORT_STATE:
        # Шаг остаётся открытым: иначе вопрос молча пропал бы, а следующий текст ушёл бы в генерацию
        text = _("Please send your question as text or a photo: that is what support receives.")
    else:
        text = _("I understand text and photos. Everything I can do is in /help.")
    await update.effective_message.reply_text(text)
