"""Звёзды: возврат платежа в три шага и ежедневная сверка с getStarTransactions."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache

from botapp.billing import payments
from botapp.billing.errors import RefundRefused
from botapp.models import Payment, PaymentMethod, TelegramUser
from botapp.providers.payments import stars as stars_api

logger = logging.getLogger(__name__)

RECONCILE_CURSOR_KEY = "billing:stars-reconcile-offset"
# Сколько уже проверенных транзакций перепроверять: между проходами могли прийти и опоздавшие
RECONCILE_OVERLAP = 100


def stars_refund(*, payment: Payment, actor: Any | None) -> None:
    """Вернуть оплату звёздами: сначала токены, потом Telegram, потом финал — или компенсация.

    Ошибка Telegram не оставляет токены сдвинутыми: они возвращаются пользователю.
    Raises: RefundRefused — платёж не оплачен, токены потрачены или Telegram отказал.
    """
    if payment.method != PaymentMethod.STARS:
        raise RefundRefused("not a Stars payment")
    attempt = payments.refund_begin(payment=payment, actor=actor)
    try:
        stars_api.stars_refund(telegram_id=payment.user.telegram_id, charge_id=payment.external_id)
    except stars_api.StarsRefundFailed as exc:
        payments.refund_compensate(payment=payment, attempt=attempt, reason=str(exc))
        raise RefundRefused(f"Telegram refused the refund: {exc}") from exc
    except Exception as exc:
        # Неизвестно, дошёл ли запрос: токены не возвращаем (иначе возможна двойная выплата),
        # платёж остаётся refund_pending, админ повторит возврат (повтор безопасен)
        logger.exception("stars refund %s: outcome unknown", payment.pk)
        raise RefundRefused(f"outcome unknown, retry the refund: {exc}") from exc
    payments.refund_finish(payment=payment)


def stars_refund_retry(*, payment: Payment) -> None:
    """Повтор зависшего refund_pending: Telegram отвечает «уже возвращён» или возвращает сейчас."""
    if payment.status != Payment.Status.REFUND_PENDING:
        raise RefundRefused("the payment is not waiting for a refund")
    try:
        stars_api.stars_refund(telegram_id=payment.user.telegram_id, charge_id=payment.external_id)
    except stars_api.StarsRefundFailed as exc:
        payments.refund_compensate(payment=payment, attempt=payment.refund_attempts, reason=str(exc))
        raise RefundRefused(f"Telegram refused the refund: {exc}") from exc
    except Exception as exc:
        logger.exception("stars refund retry %s: outcome unknown", payment.pk)
        raise RefundRefused(f"outcome unknown, retry the refund again: {exc}") from exc
    payments.refund_finish(payment=payment)


def stars_reconcile() -> int:
    """Зачислить оплаты, чей successful_payment потерялся; учесть возвраты. Возвращает число зачислений."""
    credited = 0
    offset = max(0, int(cache.get(RECONCILE_CURSOR_KEY) or 0) - RECONCILE_OVERLAP)
    seen = 0
    while seen < settings.STARS_RECONCILE_LIMIT:
        page = stars_api.stars_transactions(offset=offset)
        for tx in page.incoming:
            if not tx.payload.startswith(payments.PAYLOAD_PREFIX):
                continue
            if Payment.objects.filter(method=PaymentMethod.STARS, external_id=tx.charge_id).exists():
                continue
            if not TelegramUser.objects.filter(telegram_id=tx.telegram_id).exists():
                continue
            result = payments.payment_stars_complete(
                charge_id=tx.charge_id,
                payload=tx.payload,
                currency=payments.STARS_CURRENCY,
                total_amount=tx.amount,
                telegram_id=tx.telegram_id,
                raw={"source": "getStarTransactions"},
            )
            credited += int(result.created)
            logger.warning("stars payment %s credited by reconciliation", tx.charge_id)
        for charge_id in page.refunded:
            payments.payment_refunded_externally(method=PaymentMethod.STARS, external_id=charge_id)
        offset += page.size
        seen += page.size
        if page.size < 100:
            break
    cache.set(RECONCILE_CURSOR_KEY, offset, timeout=None)
    return credited
