"""Фабрики для тестов денег: пользователь и его стартовый баланс (через журнал, не полем)."""

from __future__ import annotations

import itertools

from botapp.billing import ledger
from botapp.models import TelegramUser, TokenPackage, TransactionKind

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


def package_make(
    *, stars: int = 50, tokens: int = 50, bonus_percent: int = 0, order: int = 1
) -> TokenPackage:
    """Пакет для тестов: транзакционные тесты очищают таблицы, засеянные миграцией."""
    return TokenPackage.objects.create(
        title_ru=f"Пакет {stars}", title_en=f"Pack {stars}", stars=stars, tokens=tokens,
        bonus_percent=bonus_percent, order=order,
    )  # fmt: skip


def billing_seed() -> None:
    """Данные миграции 0004 (каталог, пакеты, счета): транзакционные тесты их стирают."""
    import importlib

    from django.apps import apps

    importlib.import_module("botapp.migrations.0004_billing_seed").seed(apps, None)
