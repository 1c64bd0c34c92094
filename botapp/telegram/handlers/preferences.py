"""/settings: язык и предпочтения; после смены языка меню отправляется заново."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Update

from botapp.generation import drafts
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.users import services


def _settings_text() -> str:
    return _("Settings. Choose the language and how results are delivered:")


async def show_settings(update: Update, context: BotContext) -> None:
    """/settings или ⚙️: карточка настроек."""
    assert update.effective_message is not None and context.db_user is not None
    model_name = await db(drafts.default_model_name)(user=context.db_user)
    await update.effective_message.reply_text(
        _settings_text(), reply_markup=keyboards.settings_keyboard(context.db_user, model_name)
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
        model_name = await db(drafts.default_model_name)(user=user)
        await query.edit_message_text(
            _settings_text(), reply_markup=keyboards.settings_keyboard(user, model_name)
        )
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
        model_name = await db(drafts.default_model_name)(user=user)
        await query.edit_message_text(
            _settings_text(), reply_markup=keyboards.settings_keyboard(user, model_name)
        )
        return
    if action == "cycle" and value in ("model", "ratio", "count"):
        user = await db(drafts.user_cycle_default)(user=user, name=value)
        await query.answer(_("Saved"))
        model_name = await db(drafts.default_model_name)(user=user)
        await query.edit_message_text(
            _settings_text(), reply_markup=keyboards.settings_keyboard(user, model_name)
        )
        return
    await query.answer()
