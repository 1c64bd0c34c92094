"""Регистрация обработчиков: по одному маленькому обработчику на триггер."""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext as _
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from botapp.generation import drafts
from botapp.models import ConversationState
from botapp.ops.errors import error_record
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.handlers import (
    balance,
    basics,
    bonuses,
    gallery,
    generate,
    groups,
    lava,
    preferences,
    privacy,
    support,
    topup,
    unsupported,
)
from botapp.telegram.handlers.prepare import conversation_on_arrival, prepare_update
from botapp.users import services

logger = logging.getLogger(__name__)

# Только новые сообщения: правку (edited_message, если её всё же прислали) обработчики не видят
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


# Служебные сообщения (оплата, закреп и т. п.) — не обращение к боту, на них не отвечаем
SERVICE_MESSAGES = filters.StatusUpdate.ALL | filters.SUCCESSFUL_PAYMENT

# Шаги «жду одно сообщение». Команда или пункт меню из них выводит: пользователь ушёл, и его следующий
# запрос на картинку не должен уйти в поддержку, в промокод, в поле e-mail или в «➖ Избегать…» видео
ONE_MESSAGE_STEPS = (support.SUPPORT_STATE, balance.PROMO_STATE, lava.EMAIL_STATE)


async def leave_one_message_step(context: BotContext) -> None:
    assert context.db_user is not None
    state = await conversation_on_arrival(context)
    if state.state in ONE_MESSAGE_STEPS:
        await db(services.conversation_set)(user=context.db_user, state="")
        context.conversation, context.conversation_known = None, True  # пустой шаг
    elif state.state == drafts.DRAFT_STATE and state.data.get("awaiting"):
        # Черновик остаётся, перестаёт лишь ждать негативный промпт
        data = {key: value for key, value in state.data.items() if key != "awaiting"}
        await db(drafts.draft_save)(user=context.db_user, draft=data)
        context.conversation = ConversationState(user=context.db_user, state=drafts.DRAFT_STATE, data=data)
        context.conversation_known = True


def _command(callback: Any) -> Any:
    """Команда сначала выводит из шага «жду одно сообщение» (сама команда может снова в него войти)."""

    async def run(update: Update, context: BotContext) -> None:
        await leave_one_message_step(context)
        await callback(update, context)

    return run


async def route_text(update: Update, context: BotContext) -> None:
    """Текст, фото или файл в личке: пункт меню, шаг диалога или запрос на генерацию.

    Файл-картинка — как фото; прочий файл уходит только в поддержку, иначе — «понимаю текст и фото».
    """
    message = update.effective_message
    assert message is not None and context.db_user is not None
    key = keyboards.menu_key(message.text or "")
    if key:
        await leave_one_message_step(context)
    if key == "settings":
        await preferences.show_settings(update, context)
        return
    if key == "support":
        await support.open_support(update, context)
        return
    if key == "balance":
        await balance.show_balance(update, context)
        return
    if key == "topup":
        await topup.show_packages(update, context)
        return
    if key in ("image", "video"):
        await generate.choose_model(update, context, key)
        return
    if key == "gallery":
        await gallery.show_gallery(update, context)
        return
    state = await conversation_on_arrival(context)
    reply = await support.replies_to_support(message, context)
    taken = reply or support.takes(state, message.media_group_id)
    if taken and await support.support_message(update, context, reply=reply):
        return
    if state.state == balance.PROMO_STATE and message.text:
        await bonuses.promo_message(update, context)
        return
    if state.state == "lava_email" and message.text:
        await lava.lava_email_message(update, context)
        return
    if message.document and not (message.document.mime_type or "").startswith("image/"):
        # Не картинка файлом (.txt, .pdf): в генерации это пустая карточка вместо черновика с фото
        await unsupported.unsupported_message(update, context)
        return
    await generate.prompt_message(update, context)


async def on_error(update: object, context: BotContext) -> None:
    """Исключение обработчика: событие ошибки + Sentry + короткое извинение; вебхук всё равно 200."""
    error = context.error
    if error is None:
        return
    context_data: dict[str, Any] = {}
    if isinstance(update, Update):
        context_data = {
            "update_id": update.update_id,
            "chat_id": update.effective_chat and update.effective_chat.id,
        }
    try:
        await db(error_record)(source="telegram.handler", exc=error, context=context_data)
    except Exception:
        # Запись не удалась (БД, оповещение): пользователь всё равно получает извинение, а сама ошибка
        # обработчика — в лог и Sentry, раз в событиях её не будет
        logger.exception("handler error not recorded")
        logger.error("unrecorded handler error", exc_info=error)
    if isinstance(update, Update) and update.effective_chat and update.effective_chat.type == "private":
        try:
            await context.bot.send_message(
                update.effective_chat.id, _("Sorry, something went wrong. Please try again in a minute.")
            )
        except TelegramError:
            logger.warning("apology not delivered", exc_info=True)


def register_handlers(application: Application[Any, BotContext, Any, Any, Any, Any]) -> None:
    application.add_handler(TypeHandler(Update, prepare_update), group=-1)
    commands = {
        "start": basics.start,
        "help": basics.help_command,
        "terms": basics.terms,
        "privacy": basics.privacy,
        "settings": preferences.show_settings,
        "support": support.open_support,
        "paysupport": support.open_support,
        "delete_me": privacy.delete_me,
        "balance": balance.show_balance,
        "topup": topup.show_packages,
        "promo": bonuses.promo_command,
        "invite": bonuses.invite,
        "gallery": gallery.show_gallery,
    }
    for name, callback in commands.items():
        application.add_handler(CommandHandler(name, _command(callback), filters=PRIVATE))
    # /cancel сбрасывает любой шаг сам и должен видеть, был ли он: без обёртки _command
    application.add_handler(CommandHandler("cancel", basics.cancel, filters=PRIVATE))
    application.add_handler(PreCheckoutQueryHandler(topup.pre_checkout))
    application.add_handler(MessageHandler(PRIVATE & filters.SUCCESSFUL_PAYMENT, topup.successful_payment))
    application.add_handler(
        MessageHandler(PRIVATE & filters.StatusUpdate.REFUNDED_PAYMENT, topup.refunded_payment)
    )
    application.add_handler(CallbackQueryHandler(preferences.settings_button, pattern=r"^set:"))
    application.add_handler(CallbackQueryHandler(balance.balance_button, pattern=r"^bal:"))
    application.add_handler(CallbackQueryHandler(topup.show_packages, pattern=r"^top:menu$"))
    application.add_handler(CallbackQueryHandler(topup.buy_stars, pattern=r"^top:stars:\d+$"))
    application.add_handler(CallbackQueryHandler(lava.lava_choose, pattern=r"^lava:"))
    application.add_handler(
        CallbackQueryHandler(generate.model_chosen, pattern=r"^gen:m:(image|video):[\w-]+$")
    )
    application.add_handler(
        CallbackQueryHandler(generate.card_button, pattern=r"^gen:(c:\w+|ok(:\d+)?|x|neg):\w+$")
    )
    application.add_handler(CallbackQueryHandler(generate.cancel_job, pattern=r"^job:x:\d+$"))
    application.add_handler(CallbackQueryHandler(generate.result_button, pattern=r"^res:\w+:\d+(:\d+)?$"))
    application.add_handler(CallbackQueryHandler(gallery.show_gallery, pattern=r"^gal:\d+$"))
    application.add_handler(CallbackQueryHandler(privacy.delete_me_answer, pattern=r"^del:"))
    application.add_handler(CallbackQueryHandler(basics.menu_button, pattern=r"^menu$"))
    application.add_handler(MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, route_text))
    application.add_handler(MessageHandler(PRIVATE & (filters.PHOTO | filters.Document.ALL), route_text))
    # Последние в личке: неизвестная команда и всё, что бот не понимает, — иначе пользователь видит молчание
    application.add_handler(MessageHandler(PRIVATE & filters.COMMAND, _command(unsupported.unknown_command)))
    application.add_handler(MessageHandler(PRIVATE & ~SERVICE_MESSAGES, unsupported.unsupported_message))
    application.add_handler(
        MessageHandler(filters.ChatType.GROUPS & filters.UpdateType.MESSAGE, groups.group_message)
    )
    application.add_error_handler(on_error)
