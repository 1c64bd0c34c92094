"""Фабрики для тестов денег: пользователь и его стартовый баланс (через журнал, не полем)."""

from __future__ import annotations

import itertools

from botapp.billing import ledger
from botapp.models import TelegramUser, TransactionKind

_ids = itertools.count(7_000_000)


def user_make(*, telegram_id: int | None = None, language: str = "ru") -> TelegramUser:
    telegram_id = telegram_id or next(_ids)
    return TelegramUser.objects.create(
        telegram_id=telegram_id, first_name=f"User{telegram_id}", language_code=language
    )


def user_fund(user: TelegramUser, amount: int, *, key: str | None = None) -> None:
    ledger.credit(
        user=user,
        amount=amount,
        key=key or f"test-fund:{user.pk}:{amount}",
        kind=TransactionKind.ADJUSTMENT,
        source=ledger.ADJUSTMENTS,
        reason="test funding",
    )


def balance(user: TelegramUser) -> tuple[int, int]:
    account = ledger.account_for(user)
    return account.available, account.on_hold
