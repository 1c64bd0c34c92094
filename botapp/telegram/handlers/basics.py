"""/start, /help, /terms, /privacy, /cancel."""

from __future__ import annotations

from django.utils.translation import gettext as _
from telegram import Update

from botapp.models import TelegramUser
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.commands import command_descriptions
from botapp.telegram.dbcall import db
from botapp.telegram.handlers.prepare import conversation_on_arrival
from botapp.users import services


async def start(update: Update, context: BotContext) -> None:
    """/start [ref_<code>|promo_<code>|staff_<code>]: приветствие, бонусы и главное меню."""
    assert update.effective_message is not None and context.db_user is not None
    payload = context.args[0] if context.args else ""
    if payload.startswith("staff_"):
        from botapp.telegram.handlers.support import link_staff

        await link_staff(update, context, payload.removeprefix("staff_"))
        return
    notes = await db(_start_records)(user=context.db_user, payload=payload)
    text = _(
        "Hi, {name}! I turn words into images and videos.\n\n"
        "Send a prompt or a photo with a caption, or pick an item in the menu below."
    ).format(name=update.effective_user.first_name if update.effective_user else "")
    await update.effective_message.reply_text("\n\n".join([text, *notes]), reply_markup=keyboards.main_menu())


def _start_records(*, user: TelegramUser, payload: str) -> list[str]:
    """Всё, что /start пишет в БД, — одним походом в поток: диплинк, сброс шага, бонусы."""
    from botapp.telegram.handlers.bonuses import start_bonuses

    if payload:
        services.user_remember_start_payload(user=user, payload=payload)
    services.conversation_set(user=user, state="")
    return start_bonuses(user=user, payload=payload)


# /start и /help в справке не нужны: пользователь уже здесь
_SELF = ("start", "help")


async def help_command(update: Update, context: BotContext) -> None:
    """/help: что умеет бот и как им пользоваться."""
    assert update.effective_message is not None
    # Команды — из того же списка, что публикует setMyCommands: справка не отстанет от меню команд
    commands = [f"/{c.command} — {c.description}" for c in command_descriptions() if c.command not in _SELF]
    await update.effective_message.reply_text(
        _(
            "How it works:\n"
            "• 🎨 Image — describe a picture, or send photos with a caption to edit them.\n"
            "• 🎬 Video — describe a scene or send a photo to animate.\n"
            "• Every generation costs tokens; you see the price before you confirm.\n"
            "• If a result does not arrive, the tokens come back automatically."
        )
        + "\n\n"
        + _("Commands:")
        + "\n"
        + "\n".join(commands),
        reply_markup=keyboards.main_menu(),
    )


async def terms(update: Update, context: BotContext) -> None:
    """/terms: условия использования."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _(
            "Terms of use: tokens are an internal balance for generations and are not money. "
            "Do not request illegal or harmful content; such requests are refused by the provider. "
            "A failed generation is refunded automatically."
        )
    )


async def privacy(update: Update, context: BotContext) -> None:
    """/privacy: какие данные храним и как их удалить."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _(
            "We store your Telegram id, name and language, your prompts, the results "
            "and the chat with support. "
            "Media is kept for a limited time. /delete_me erases your personal data."
        )
    )


async def cancel(update: Update, context: BotContext) -> None:
    """/cancel: выйти из текущего шага или черновика; без них «Отменено» вводило бы в заблуждение."""
    assert update.effective_message is not None and context.db_user is not None
    state = await conversation_on_arrival(context)
    if state.state:
        await db(services.conversation_set)(user=context.db_user, state="")
        text = _("Cancelled.")
    else:
        text = _("Nothing to cancel.")
    await update.effective_message.reply_text(text, reply_markup=keyboards.main_menu())


async def menu_button(update: Update, context: BotContext) -> None:
    """Кнопка «меню» под сообщениями: ответить на нажатие и показать главное меню."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    if query.message is not None:
        await context.bot.send_message(
            query.message.chat.id, _("Main menu:"), reply_markup=keyboards.main_menu()
        )
