"""Функции, которые тесты гонок запускают в отдельных ОС-процессах (support/parallel.py)."""

from __future__ import annotations

from typing import Any

from botapp.billing import bonuses, ledger, payments
from botapp.billing.errors import InsufficientFunds
from botapp.models import TelegramUser


def hold_many(*, telegram_id: int, amount: int, keys: list[str]) -> list[str]:
    user = TelegramUser.objects.get(telegram_id=telegram_id)
    outcomes = []
    for key in keys:
        try:
            ledger.hold(user=user, amount=amount, key=key)
            outcomes.append("held")
        except InsufficientFunds:
            outcomes.append("refused")
    return outcomes


def promo_redeem(*, telegram_id: int, code: str) -> str:
    user = TelegramUser.objects.get(telegram_id=telegram_id)
    return bonuses.promo_redeem(user=user, code=code).status


def stars_complete(**kwargs: Any) -> bool:
    return payments.payment_stars_complete(**kwargs).created


def settle(*, hold_id: int, how: str) -> str:
    from botapp.billing.errors import HoldAlreadySettled
    from botapp.models import Hold

    held = Hold.objects.get(pk=hold_id)
    try:
        if how == "capture":
            ledger.capture(hold=held, amount=held.amount)
        else:
            ledger.release(hold=held, reason="race")
    except HoldAlreadySettled:
        return "refused"
    return how


def lava_settle(*, invoice_id: int, payload: dict[str, Any]) -> str:
    from botapp.billing import lava
    from botapp.models import Invoice

    invoice = Invoice.objects.select_related("user", "package").get(pk=invoice_id)
    return lava.lava_invoice_settle(invoice=invoice, webhook=payload).action
