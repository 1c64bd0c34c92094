"""💰 Баланс / /balance: остаток, что на него купить, история движений, ввод промокода."""

from __future__ import annotations

from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from telegram import Update

from botapp.billing import selectors
from botapp.models import TransactionKind
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.formatting import escape, from_tokens, images, tokens, videos
from botapp.users import services

PROMO_STATE = "promo"

KIND_LABELS: dict[str, Any] = {
    TransactionKind.WELCOME_BONUS: gettext_lazy("Welcome bonus"),
    TransactionKind.PURCHASE: gettext_lazy("Top-up"),
    TransactionKind.HOLD: gettext_lazy("Reserved for a generation"),
    TransactionKind.RELEASE: gettext_lazy("Generation refunded"),
    TransactionKind.PAYMENT_REFUND: gettext_lazy("Payment refunded"),
    TransactionKind.REFUND_REVERSAL: gettext_lazy("Refund cancelled"),
    TransactionKind.PROMO: gettext_lazy("Promo code"),
    TransactionKind.REFERRAL_REWARD: gettext_lazy("Referral reward"),
    TransactionKind.REFERRAL_REVERSAL: gettext_lazy("Referral reward cancelled"),
    TransactionKind.ADJUSTMENT: gettext_lazy("Adjustment by support"),
    TransactionKind.CHARGEBACK: gettext_lazy("Chargeback"),
}
# У приглашённого те же виды проводок, но «награда за приглашение» звучала бы так, будто пригласил он
INVITEE_LABELS: dict[str, Any] = {
    TransactionKind.REFERRAL_REWARD: gettext_lazy("Invite bonus"),
    TransactionKind.REFERRAL_REVERSAL: gettext_lazy("Invite bonus cancelled"),
}


def balance_text(summary: selectors.BalanceSummary) -> str:
    lines = [_("💰 Available: {available}").format(available=tokens(summary.available))]
    if summary.on_hold:
        lines.append(_("⏳ Reserved for running jobs: {on_hold}").format(on_hold=tokens(summary.on_hold)))
    if summary.image_price and not summary.images:
        # «хватит на 0 изображений» не говорит, сколько не хватает: цена — говорит
        lines.append(
            _("Not enough for an image yet: one costs {price}.").format(price=tokens(summary.image_price))
        )
    elif summary.image_price and summary.videos:
        lines.append(
            _("That is ≈ {images} or {videos}.").format(
                images=images(summary.images), videos=videos(summary.videos)
            )
        )
    elif summary.image_price and summary.video_price:
        lines.append(
            _("That is ≈ {images}; videos cost {price}.").format(
                images=images(summary.images), price=from_tokens(summary.video_price)
            )
        )
    elif summary.image_price:
        lines.append(_("That is ≈ {images}.").format(images=images(summary.images)))
    return "\n".join(lines)


async def show_balance(update: Update, context: BotContext) -> None:
    """/balance или 💰: остаток и кнопки пополнить / промокод / история."""
    assert update.effective_message is not None and context.db_user is not None
    summary = await db(selectors.balance_summary)(user=context.db_user)
    await update.effective_message.reply_text(
        balance_text(summary), reply_markup=keyboards.balance_keyboard()
    )


def _history_text(rows: list[selectors.HistoryRow], page: int) -> str:
    if not rows:
        return _("No transactions yet.") if page == 0 else _("No older transactions.")
    lines = [_("History of your tokens:")]
    for row in rows:
        # В базе время в UTC; пользователь видит местное (TIME_ZONE), как в галерее
        when = formats.date_format(timezone.localtime(row.created_at), "SHORT_DATETIME_FORMAT")
        lines.append(f"{escape(when)} · {_history_entry(row)}")
    return "\n".join(lines)


def _history_entry(row: selectors.HistoryRow) -> str:
    """Что случилось и насколько изменился доступный остаток (жирным)."""
    change = row.available_change
    if row.kind == TransactionKind.CAPTURE:
        # Токены ушли из остатка ещё при резервировании (строка ниже): второе «-54» читалось бы
        # как двойное списание, поэтому здесь — что резерв использован и остаток не изменился
        if not change:
            return escape(
                _("Generation done: the reserve of {tokens} was used, balance unchanged").format(
                    tokens=tokens(-row.on_hold_change)
                )
            )
        label = _("Generation done: the unused reserve was returned")
    else:
        label = str((INVITEE_LABELS if row.invitee else KIND_LABELS).get(row.kind, row.kind))
    amount = f"{change:+d}" if change else f"({row.on_hold_change:+d})"
    return f"{escape(label)} · <b>{amount}</b>"


async def balance_button(update: Update, context: BotContext) -> None:
    """Кнопки под балансом: bal:hist:<страница>, bal:promo."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    await query.answer()
    parts = query.data.split(":")
    if parts[1] == "promo":
        await db(services.conversation_set)(user=context.db_user, state=PROMO_STATE)
        await context.bot.send_message(
            context.db_user.telegram_id, _("Send the promo code in one message. /cancel to go back.")
        )
        return
    page = max(0, int(parts[2])) if parts[1] == "hist" and parts[2].isdigit() else 0
    rows, has_next = await db(selectors.ledger_history)(user=context.db_user, page=page)
    text = _history_text(rows, page)
    markup = keyboards.history_keyboard(page=page, has_next=has_next)
    if page == 0 or query.message is None:
        await context.bot.send_message(
            context.db_user.telegram_id, text, parse_mode="HTML", reply_markup=markup
        )
    else:
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
