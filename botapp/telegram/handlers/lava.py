"""💳 Оплата картой через lava.top: кнопка пакета, e-mail для чека, ссылка на оплату, чек после вебхука."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError

from botapp.billing import lava
from botapp.billing.referrals import ReferralReward
from botapp.models import TelegramUser
from botapp.providers.base import ProviderError
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext, get_application
from botapp.telegram.dbcall import db
from botapp.telegram.formatting import tokens as token_count
from botapp.telegram.handlers.topup import receipt_send
from botapp.users import services

logger = logging.getLogger(__name__)

EMAIL_STATE = "lava_email"


def _not_offered() -> str:
    return _("Card payment is not available for this package. Open /topup.")


def _parse(data: str) -> tuple[int, str] | None:
    """lava:<id пакета>:<валюта> → (id, валюта); чужой формат — None."""
    parts = data.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in lava.CURRENCIES:
        return None
    return int(parts[1]), parts[2]


async def _send_payment_link(context: BotContext, user: TelegramUser, package_id: int, currency: str) -> None:
    try:
        invoice = await db(lava.lava_invoice_create)(user=user, package_id=package_id, currency=currency)
    except lava.LavaNotOffered:
        await context.bot.send_message(user.telegram_id, _not_offered())
        return
    except ProviderError as exc:
        logger.warning("lava invoice for user %s failed: %s", user.pk, exc)
        await context.bot.send_message(
            user.telegram_id,
            _("Card payment is temporarily unavailable. Try again later or pay with Telegram Stars: /topup"),
        )
        return
    button = InlineKeyboardButton(
        _("💳 Pay {amount} {currency}").format(amount=invoice.amount, currency=invoice.currency),
        url=invoice.payment_url,
    )
    await context.bot.send_message(
        user.telegram_id,
        _(
            "{tokens} for {amount} {currency}. Pay on the lava.top page; "
            "the tokens arrive here right after the payment."
        ).format(tokens=token_count(invoice.tokens), amount=invoice.amount, currency=invoice.currency),
        reply_markup=InlineKeyboardMarkup([[button]]),
    )


async def lava_choose(update: Update, context: BotContext) -> None:
    """Кнопка lava:<id>:<валюта>: спросить e-mail (один раз) или сразу дать ссылку на оплату."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    await query.answer()
    user = context.db_user
    parsed = _parse(query.data)
    if (
        parsed is None
        or await db(lava.lava_offer_get)(user=user, package_id=parsed[0], currency=parsed[1]) is None
    ):
        await context.bot.send_message(user.telegram_id, _not_offered())
        return
    package_id, currency = parsed
    if not user.lava_email:
        data = {"package_id": package_id, "currency": currency}
        await db(services.conversation_set)(user=user, state=EMAIL_STATE, data=data)
        await context.bot.send_message(
            user.telegram_id,
            _(
                "To pay by card, send your e-mail in one message: lava.top sends the receipt there. "
                "/cancel to go back."
            ),
        )
        return
    await _send_payment_link(context, user, package_id, currency)


async def lava_email_message(update: Update, context: BotContext) -> None:
    """Текст в состоянии lava_email: проверить и запомнить e-mail, затем дать ссылку на оплату."""
    message = update.effective_message
    assert message is not None and message.text is not None and context.db_user is not None
    user = context.db_user
    try:
        await db(lava.lava_email_set)(user=user, email=message.text)
    except ValidationError:
        await message.reply_text(
            _("This does not look like an e-mail. Send it like name@example.com, or /cancel.")
        )
        return
    state = await db(services.conversation_get)(user=user)
    await db(services.conversation_set)(user=user, state="")
    package_id, currency = state.data.get("package_id"), state.data.get("currency")
    if not isinstance(package_id, int) or not isinstance(currency, str):
        await message.reply_text(_("E-mail saved."), reply_markup=keyboards.main_menu())
        return
    await _send_payment_link(context, user, package_id, currency)


async def lava_receipt_send(
    *, user: TelegramUser, tokens: int, available: int, referral: ReferralReward | None = None
) -> None:
    """После зачисления по вебхуку: чек в чат (и пригласившему — о награде). Не дошёл — не беда."""
    try:
        application = await get_application()
    except TelegramError as exc:
        logger.warning("lava receipt to user %s not sent: %s", user.pk, exc)
        return
    await receipt_send(application.bot, user=user, amount=tokens, available=available, referral=referral)
