"""/settings: язык и предпочтения; после смены языка меню отправляется заново."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Update

from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.users import services


def _settings_text() -> str:
    return _("Settings. Choose the language and how results are delivered:")


async def show_settings(update: Update, context: BotContext) -> None:
    """/settings или ⚙️: карточка настроек."""
    assert update.effective_message is not None and context.db_user is not None
    await update.effective_message.reply_text(
        _settings_text(), reply_markup=keyboards.settings_keyboard(context.db_user)
    )


async def settings_button(update: Update, context: BotContext) -> None:
    """Кнопка в карточке настроек: set:lang:<ru|en> или set:toggle:<поле>."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    _prefix, action, value = query.data.split(":", 2)
    user = context.db_user
    if action == "lang" and value in ("ru", "en"):
        changed = user.effective_language != value
        if changed or not user.language:
            user = await db(services.user_set_language)(user=user, language=value)
        await query.answer()
        if not changed:
            # Та же отметка и тот же текст: правка дала бы 400 «message is not modified»
            return
        translation.activate(value)
        await query.edit_message_text(_settings_text(), reply_markup=keyboards.settings_keyboard(user))
        if query.message is not None:
            # Reply-клавиатуру нельзя поменять правкой: только новым сообщением
            await context.bot.send_message(
                query.message.chat.id, _("Language switched to English."), reply_markup=keyboards.main_menu()
            )
        return
    if action == "toggle":
        try:
            user = await db(services.user_toggle_setting)(user=user, name=value)
        except ValueError:
            await query.answer()
            return
        await query.answer(_("Saved"))
        await query.edit_message_text(_settings_text(), reply_markup=keyboards.settings_keyboard(user))
        return
    await query.answer()
