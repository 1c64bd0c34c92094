"""Промокоды (/promo, ввод после кнопки, диплинк promo_<код>), /invite и бонусы при /start."""

from __future__ import annotations

from django.utils.translation import gettext as _
from telegram import Update

from botapp.billing import bonuses, referrals
from botapp.billing.bonuses import PromoResult
from botapp.models import TelegramUser
from botapp.telegram import keyboards
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.formatting import tokens
from botapp.telegram.handlers.balance import PROMO_STATE
from botapp.users import services


def promo_result_text(result: PromoResult) -> str:
    texts = {
        "ok": _("🎟 Promo code accepted: +{amount}. Balance: {available}."),
        "invalid": _("A promo code contains only Latin letters, digits, _ and -."),
        "not_found": _("There is no such promo code."),
        "inactive": _("This promo code is not active."),
        "expired": _("This promo code is not valid now."),
        "exhausted": _("This promo code has run out."),
        "already_used": _("You have already used this promo code."),
        "too_many": _("Too many attempts with unknown promo codes. Please try again in an hour."),
    }
    return texts[result.status].format(amount=tokens(result.amount), available=tokens(result.available))


async def promo_command(update: Update, context: BotContext) -> None:
    """/promo <код> — погасить; /promo без кода — ждать код следующим сообщением."""
    assert update.effective_message is not None and context.db_user is not None
    if not context.args:
        await db(services.conversation_set)(user=context.db_user, state=PROMO_STATE)
        await update.effective_message.reply_text(
            _("Send the promo code in one message. /cancel to go back.")
        )
        return
    result = await db(bonuses.promo_redeem)(user=context.db_user, code=context.args[0])
    await update.effective_message.reply_text(promo_result_text(result))


async def promo_message(update: Update, context: BotContext) -> None:
    """Текст в состоянии «промокод»: погасить и выйти из состояния."""
    message = update.effective_message
    assert message is not None and context.db_user is not None
    await db(services.conversation_set)(user=context.db_user, state="")
    result = await db(bonuses.promo_redeem)(user=context.db_user, code=(message.text or "").strip())
    await message.reply_text(promo_result_text(result), reply_markup=keyboards.main_menu())


async def invite(update: Update, context: BotContext) -> None:
    """/invite: личная ссылка и сколько друзей пришло и оплатило."""
    assert update.effective_message is not None and context.db_user is not None
    code = await db(referrals.referral_code_for)(user=context.db_user)
    joined, paid = await db(referrals.referral_stats)(user=context.db_user)
    rewards = await db(referrals.referral_rewards)()
    link = f"https://t.me/{context.bot.username}?start=ref_{code}"
    await update.effective_message.reply_text(
        _(
            "Invite friends with your link:\n{link}\n\n"
            "When a friend makes the first top-up, you get {inviter} and the friend gets {invitee}.\n"
            "Friends joined: {joined}, paid: {paid}."
        ).format(link=link, inviter=tokens(rewards[0]), invitee=tokens(rewards[1]), joined=joined, paid=paid)
    )


def start_bonuses(*, user: TelegramUser, payload: str) -> list[str]:
    """Бонусы при /start: приветственный (один раз на аккаунт), реферал, промокод из ссылки."""
    notes = []
    welcome = bonuses.welcome_bonus_grant(user=user)
    if welcome:
        notes.append(_("🎁 Welcome bonus: {amount} to try the bot.").format(amount=tokens(welcome)))
    if payload.lower().startswith("ref_"):
        if referrals.referral_attach(invitee=user, code=payload[4:]) == "attached":
            notes.append(
                _("You came by a friend's invitation: after your first top-up you both get a bonus.")
            )
    elif payload.lower().startswith("promo_"):
        notes.append(promo_result_text(bonuses.promo_redeem(user=user, code=payload[6:])))
    return notes
