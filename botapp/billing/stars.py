"""Звёзды: возврат платежа в три шага и ежедневная сверка с getStarTransactions."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from botapp.billing import payments
from botapp.billing.errors import RefundRefused
from botapp.models import Payment, PaymentMethod, PricingSettings, TelegramUser
from botapp.providers.payments import stars as stars_api

logger = logging.getLogger(__name__)

# Сколько уже проверенных транзакций перепроверять: между проходами могли прийти и опоздавшие
RECONCILE_OVERLAP = 100
# Больше за один вызов getStarTransactions не отдаёт (limit 1–100); страница короче — конец списка
RECONCILE_PAGE = 100


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


def stars_reconcile_cursor() -> int:
    """Сколько транзакций звёзд уже разобрано (курсор хранится в БД, а не в кэше: его не вытеснить)."""
    row, _created = PricingSettings.objects.get_or_create(pk=1)
    return row.stars_reconciled_offset


def _cursor_advance(offset: int) -> None:
    # Только вперёд: параллельный проход (ручной запуск рядом с beat) не откатит курсор назад
    PricingSettings.objects.filter(pk=1, stars_reconciled_offset__lt=offset).update(
        stars_reconciled_offset=offset
    )


def stars_reconcile(
    on_credit: Callable[[payments.PaymentResult], None] | None = None,
) -> list[payments.PaymentResult]:
    """Зачислить оплаты, чей successful_payment потерялся; учесть возвраты. Возвращает новые зачисления.

    on_credit — сразу после каждого зачисления (чек покупателю: апдейт потерялся — чека он не видел).
    Сразу, а не по итогу: сбой на следующей странице не должен оставить уже зачисленных без чека.

    Листает getStarTransactions страницами по 100 до короткой страницы (конец списка) — за проход
    курсор догоняет всё накопленное; проход ограничен STARS_RECONCILE_MAX_PAGES и
    STARS_RECONCILE_BUDGET_S, а остаток дочитает следующий. Курсор сохраняется после каждой
    страницы: сбой посреди прохода не теряет уже разобранное. Повтор безопасен (зачисление идемпотентно).
    """
    credited: list[payments.PaymentResult] = []
    offset = max(0, stars_reconcile_cursor() - RECONCILE_OVERLAP)
    deadline = time.monotonic() + settings.STARS_RECONCILE_BUDGET_S
    for _page_number in range(settings.STARS_RECONCILE_MAX_PAGES):
        page = stars_api.stars_transactions(offset=offset, limit=RECONCILE_PAGE)
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
            if result.created:
                credited.append(result)
                if on_credit is not None:
                    on_credit(result)
            logger.warning("stars payment %s credited by reconciliation", tx.charge_id)
        for charge_id in page.refunded:
            payments.payment_refunded_externally(method=PaymentMethod.STARS, external_id=charge_id)
        offset += page.size
        _cursor_advance(offset)
        if page.size < RECONCILE_PAGE:
            break
        if time.monotonic() > deadline:
            logger.warning(
                "stars reconciliation stopped at %s by its time budget; next run continues", offset
            )
            break
    else:
        logger.warning("stars reconciliation stopped at %s by its page limit; next run continues", offset)
    return credited
