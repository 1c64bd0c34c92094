"""Задачи денег (очередь maintenance): сверка журнала, сверка звёзд с Telegram, опрос счетов lava."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import translation
from telegram.error import TelegramError

from botapp.billing import lava, reconcile, stars
from botapp.telegram.sender import RecipientBlocked, SendDeferred

logger = logging.getLogger(__name__)


@shared_task(name="maintenance.reconcile_ledger", ignore_result=True)
def reconcile_ledger() -> None:
    """По расписанию: инварианты денег; нарушение — событие ошибки и оповещение."""
    reconcile.reconcile_and_alert()


@shared_task(name="maintenance.reconcile_stars", ignore_result=True)
def reconcile_stars() -> None:
    """Раз в сутки: зачислить оплаты звёздами, апдейт о которых потерялся."""
    stars.stars_reconcile()


@shared_task(name="maintenance.lava_poll", ignore_result=True)
def lava_poll() -> None:
    """По расписанию: открытые счета lava, вебхук по которым не дошёл, зачисляются и без него."""
    if not settings.LAVA_API_KEY:
        return
    for outcome in lava.lava_poll_open():
        if outcome.settled and outcome.user is not None:
            _receipt_send(outcome)


def _receipt_send(outcome: lava.WebhookOutcome) -> None:
    """Тот же чек, что после вебхука, и пригласившему — о награде; не дошло — не беда: токены уже на счету."""
    from botapp.telegram import keyboards
    from botapp.telegram.handlers.topup import referral_reward_send, settled_text
    from botapp.telegram.outbound import bot_call

    user = outcome.user
    assert user is not None
    with translation.override(user.effective_language):
        text = settled_text(outcome.tokens, outcome.available)
        menu = keyboards.main_menu()
    try:
        bot_call(lambda bot: bot.send_message(user.telegram_id, text, reply_markup=menu))
    except (TelegramError, RecipientBlocked, SendDeferred) as exc:
        logger.warning("lava receipt to user %s not sent: %s", user.pk, exc)
    referral = outcome.referral
    if referral is not None:
        # Пригласившему — о награде за эту оплату; ошибки отправки ловит сама функция
        bot_call(lambda bot: referral_reward_send(bot, referral))
