"""Группы: отвечаем только на обращения к боту и зовём в личный чат."""

from __future__ import annotations

from django.utils.translation import gettext as _
from telegram import MessageEntity, ReplyParameters, Update

from botapp.telegram.application import BotContext


def _entity_addresses_bot(entity: MessageEntity, text: str, own: str, bot_id: int) -> bool:
    if entity.type == MessageEntity.BOT_COMMAND:
        # Команда без @суффикса — всем ботам группы, с суффиксом — только названному
        _command, _at, target = text.partition("@")
        return entity.offset == 0 and (not target or (bool(own) and target.lower() == own))
    if entity.type == MessageEntity.MENTION:
        return bool(own) and text.lower() == f"@{own}"
    if entity.type == MessageEntity.TEXT_MENTION:
        return entity.user is not None and entity.user.id == bot_id
    return False


def addressed_to_bot(update: Update, bot_username: str, bot_id: int) -> bool:
    """Обращение к боту: наша команда, упоминание бота или ответ на его сообщение.

    Смотрим на сущности Telegram, а не на текст: «/help@otherbot» адресован другому боту,
    а «@nanobot_fan» — не упоминание нашего.
    """
    message = update.effective_message
    if message is None:
        return False
    own = bot_username.lower()
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    if any(_entity_addresses_bot(entity, text, own, bot_id) for entity, text in entities.items()):
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
