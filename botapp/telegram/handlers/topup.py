"""⭐ Пополнить / /topup: пакеты, счёт в звёздах, pre_checkout на месте, зачисление, чек."""

from __future__ import annotations

import logging

from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Bot, LabeledPrice, Update
from telegram.error import TelegramError

from botapp.billing import payments, selectors
from botapp.billing.referrals import ReferralReward
from botapp.models import PaymentMethod, TelegramUser, TokenPackage
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.formatting import tokens
from botapp.telegram.sender import RecipientBlocked, SendDeferred

logger = logging.getLogger(__name__)


def _refusal_text(reason: str) -> str:
    texts = {
        "unknown_invoice": _("This invoice is no longer valid. Open /topup and try again."),
        "wrong_user": _("This invoice was issued to another account."),
        "banned": _("Payments are not available for this account. Contact /support."),
        "already_paid": _("This invoice has already been paid."),
        "package_unavailable": _("This package is no longer on sale. Open /topup for the current ones."),
        "wrong_currency": _("This invoice has a wrong currency. Open /topup and try again."),
        "wrong_amount": _("The price has changed. Open /topup and try again."),
    }
    return texts.get(reason, _("The payment cannot be accepted. Open /topup and try again."))


async def show_packages(update: Update, context: BotContext) -> None:
    """/topup, ⭐ или кнопка «пополнить»: список пакетов."""
    assert context.db_user is not None
    if update.callback_query:
        await update.callback_query.answer()
    packages = await db(selectors.packages_for_sale)()
    if not packages:
        await context.bot.send_message(context.db_user.telegram_id, _("Top-ups are temporarily unavailable."))
        return
    offers = await db(selectors.card_offers)(user=context.db_user, packages=packages)
    await context.bot.send_message(
        context.db_user.telegram_id,
        _("Choose a package. Payment is in Telegram Stars ⭐; tokens arrive right after the payment."),
        reply_markup=keyboards.packages_keyboard(packages, context.db_user.effective_language, offers),
    )


async def buy_stars(update: Update, context: BotContext) -> None:
    """Кнопка пакета top:stars:<id>: выставить счёт в звёздах (XTR, без provider_token)."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    await query.answer()
    package_id = query.data.rsplit(":", 1)[-1]
    package = await db(TokenPackage.objects.filter(pk=int(package_id), is_enabled=True).first)()
    if package is None:
        await context.bot.send_message(context.db_user.telegram_id, _refusal_text("package_unavailable"))
        return
    invoice = await db(payments.invoice_create_stars)(user=context.db_user, package=package)
    title = package.title_ru if context.db_user.effective_language == "ru" else package.title_en
    await context.bot.send_invoice(
        chat_id=context.db_user.telegram_id,
        title=title[:32],
        description=_("{tokens} for image and video generation.").format(tokens=tokens(invoice.tokens)),
        payload=payments.invoice_payload(invoice),
        currency=payments.STARS_CURRENCY,
        prices=[LabeledPrice(tokens(invoice.tokens), package.stars)],
    )


async def pre_checkout(update: Update, context: BotContext) -> None:
    """pre_checkout_query: ответить на месте (Telegram ждёт ≤10 с) после сверки со счётом."""
    query = update.pre_checkout_query
    assert query is not None
    reason = await db(payments.precheckout_refusal)(
        payload=query.invoice_payload,
        currency=query.currency,
        total_amount=query.total_amount,
        telegram_id=query.from_user.id,
    )
    if reason is None:
        await query.answer(ok=True)
    else:
        logger.warning("pre_checkout refused: %s", reason)
        await query.answer(ok=False, error_message=_refusal_text(reason))


async def successful_payment(update: Update, context: BotContext) -> None:
    """successful_payment: зачислить ровно один раз (ключ — telegram_payment_charge_id), прислать чек."""
    message = update.effective_message
    assert message is not None and message.successful_payment is not None and update.effective_user
    paid = message.successful_payment
    result = await db(payments.payment_stars_complete)(
        charge_id=paid.telegram_payment_charge_id,
        payload=paid.invoice_payload,
        currency=paid.currency,
        total_amount=paid.total_amount,
        telegram_id=update.effective_user.id,
        raw=paid.to_dict(),
    )
    if not result.created:
        return
    text = settled_text(result.payment.tokens, result.available)
    await message.reply_text(text, reply_markup=keyboards.main_menu())
    if result.referral is not None:
        await referral_reward_send(context.bot, result.referral)


def receipt_text(amount: int, available: int) -> str:
    """Чек зачисления — один текст для звёзд и для карты (lava.top)."""
    return _("✅ Payment received: +{tokens}.\nBalance: {available}.").format(
        tokens=tokens(amount), available=tokens(available)
    )


async def receipt_send(
    bot: Bot, *, user: TelegramUser, amount: int, available: int, referral: ReferralReward | None = None
) -> None:
    """Чек не в ответ на сообщение (вебхук и опрос lava, сверка звёзд) и пригласившему — о награде.

    amount == 0 — платёж не сошёлся со счётом: записан, решает персонал; покупатель должен это знать.
    Не дошёл — не беда: токены уже на счету.
    """
    with translation.override(user.effective_language):
        text = settled_text(amount, available)
        try:
            await bot.send_message(user.telegram_id, text, reply_markup=keyboards.main_menu())
        except (TelegramError, RecipientBlocked, SendDeferred) as exc:
            logger.warning("receipt to user %s not sent: %s", user.pk, exc)
    if referral is not None:
        await referral_reward_send(bot, referral)


async def referral_reward_send(bot: Bot, reward: ReferralReward) -> None:
    """Пригласившему — о награде за первую оплату друга, на его языке; шлют те же, кто шлёт чек.

    Уже после коммита: не дошло (заблокировал бота, лимит) — не беда, токены уже на балансе.
    """
    inviter = reward.inviter
    with translation.override(inviter.effective_language):
        text = _("🎁 Your friend made a first purchase: +{tokens}.\nBalance: {available}.").format(
            tokens=tokens(reward.amount), available=tokens(reward.available)
        )
        try:
            await bot.send_message(inviter.telegram_id, text)
        except (TelegramError, RecipientBlocked, SendDeferred) as exc:
            logger.warning("referral reward note to user %s not sent: %s", inviter.pk, exc)


def unmatched_text() -> str:
    """Платёж записан без зачисления (нет счёта, сумма не та): деньги не пропали, решает поддержка."""
    return _("Payment received, but we could not match it to an invoice. Support will sort it out.")


def settled_text(tokens: int, available: int) -> str:
    """Ответ на записанный платёж: чек зачисления или (tokens == 0) — «разберётся поддержка»."""
    return receipt_text(tokens, available) if tokens else unmatched_text()


async def refunded_payment(update: Update, context: BotContext) -> None:
    """refunded_payment: Telegram вернул звёзды — забрать токены через журнал (как админский возврат)."""
    message = update.effective_message
    assert message is not None and message.refunded_payment is not None
    result = await db(payments.payment_refunded_externally)(
        method=PaymentMethod.STARS, external_id=message.refunded_payment.telegram_payment_charge_id
    )
    await message.reply_text(refund_text(result))


def refund_text(result: payments.ExternalRefund | None) -> str:
    """Что случилось с токенами после возврата — по итогу сервиса, а не «всё забрали» на любой случай."""
    if result is None:
        return _(
            "Telegram reported a refund of a payment we have no record of. "
            "If something is wrong, write to /paysupport."
        )
    if not result.changed:
        return _("This payment has already been refunded; nothing changed.")
    if result.payment.tokens:
        lines = [
            _("The payment was refunded. Taken back from the balance: {tokens}.").format(
                tokens=tokens(result.taken)
            )
        ]
    else:
        lines = [_("The payment was refunded.")]
    if result.bonus_cancelled:
        lines.append(
            _("The invitation bonus for this payment was cancelled too: {tokens}.").format(
                tokens=tokens(result.bonus_cancelled)
            )
        )
    if result.payer_owed:
        lines.append(
            _(
                "Still owed: {tokens}. They will be deducted from tokens that come back to the balance "
                "after a failed or cancelled generation."
            ).format(tokens=tokens(result.payer_owed))
        )
    return "\n".join(lines)
