"""Задачи денег (очередь maintenance): сверка журнала, сверка звёзд с Telegram, опрос счетов lava."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from botapp.billing import lava, reconcile, stars
from botapp.billing.payments import PaymentResult
from botapp.billing.referrals import ReferralReward
from botapp.models import TelegramUser

logger = logging.getLogger(__name__)


@shared_task(name="maintenance.reconcile_ledger", ignore_result=True)
def reconcile_ledger() -> None:
    """По расписанию: инварианты денег; нарушение — событие ошибки и оповещение."""
    reconcile.reconcile_and_alert()


@shared_task(name="maintenance.reconcile_stars", ignore_result=True)
def reconcile_stars() -> None:
    """Раз в час: зачислить оплаты звёздами, апдейт о которых потерялся, и прислать по ним чеки."""
    stars.stars_reconcile(on_credit=_stars_receipt_send)


def _stars_receipt_send(result: PaymentResult) -> None:
    if result.payment.tokens:
        _receipt_send(result.payment.user, result.payment.tokens, result.available, result.referral)


@shared_task(name="maintenance.lava_poll", ignore_result=True)
def lava_poll() -> None:
    """По расписанию: открытые счета lava, вебхук по которым не дошёл, зачисляются и без него."""
    if not settings.LAVA_API_KEY:
        return
    for outcome in lava.lava_poll_open():
        if outcome.settled and outcome.user is not None:
            _receipt_send(outcome.user, outcome.tokens, outcome.available, outcome.referral)


def _receipt_send(user: TelegramUser, tokens: int, available: int, referral: ReferralReward | None) -> None:
    """Тот же чек, что после оплаты по вебхуку, и пригласившему — о награде (ошибки ловит receipt_send)."""
    from botapp.telegram.handlers.topup import receipt_send
    from botapp.telegram.outbound import bot_call

    bot_call(lambda bot: receipt_send(bot, user=user, amount=tokens, available=available, referral=referral))
