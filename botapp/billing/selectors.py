"""Чтение денег для бота: остаток и «что на него купить», история движений, пакеты."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Sum

from botapp.billing import ledger, referrals
from botapp.billing.errors import PricingError
from botapp.billing.pricing import Factors, ImageRequest, VideoRequest, price_tokens, pricing_factors
from botapp.models import GenerationModel, LedgerEntry, LedgerTransaction, TelegramUser, TokenPackage, rows


@dataclass(frozen=True)
class BalanceSummary:
    available: int
    on_hold: int
    image_price: int | None
    # Самое дешёвое видео среди включённых моделей: «от N», как в меню видео
    video_price: int | None

    @property
    def images(self) -> int:
        return self.available // self.image_price if self.image_price else 0

    @property
    def videos(self) -> int:
        return self.available // self.video_price if self.video_price else 0


@dataclass(frozen=True)
class HistoryRow:
    kind: str
    available_change: int
    on_hold_change: int
    created_at: datetime
    # Бонус приглашённого (или его отмена): вид проводки тот же, что у награды пригласившего,
    # а подпись в боте нужна своя
    invitee: bool = False


def _default_price(model: GenerationModel | None, factors: Factors | None) -> int | None:
    """Цена самого обычного запроса модели (1K-картинка, самое дешёвое видео)."""
    if model is None or factors is None:
        return None
    try:
        if model.kind == GenerationModel.Kind.IMAGE:
            return price_tokens(model, ImageRequest(size=(model.image_sizes or ["1K"])[0]), factors)
        return min(price_tokens(model, VideoRequest(*option), factors) for option in model.video_options)
    except (PricingError, ValueError):
        return None


def balance_summary(*, user: TelegramUser) -> BalanceSummary:
    """Остаток и цены: три запроса (счёт, модели, коэффициенты) вместо пяти.

    Картинка — модель по умолчанию; видео — самая дешёвая включённая модель: меню видео предлагает
    все, и цена модели по умолчанию отпугивала бы от той, что по карману.
    """
    account = ledger.account_for(user)
    with connection.cursor() as cursor:
        # Сырой SQL (models/rows.py): баланс — частая кнопка меню
        cursor.execute(
            f"SELECT {rows.columns(GenerationModel, 'm')} FROM {rows.table(GenerationModel)} m "  # noqa: S608
            "WHERE m.is_enabled AND (m.is_default OR m.kind = %s)",
            [GenerationModel.Kind.VIDEO.value],
        )
        models = [rows.from_row(GenerationModel, row) for row in cursor.fetchall()]
    image = next((m for m in models if m.kind == GenerationModel.Kind.IMAGE), None)
    factors = pricing_factors() if models else None
    video_prices = [
        price
        for model in models
        if model.kind == GenerationModel.Kind.VIDEO and (price := _default_price(model, factors)) is not None
    ]
    return BalanceSummary(
        available=account.available,
        on_hold=account.on_hold,
        image_price=_default_price(image, factors),
        video_price=min(video_prices, default=None),
    )


def ledger_history(*, user: TelegramUser, page: int, per_page: int = 8) -> tuple[list[HistoryRow], bool]:
    """Движения пользователя, новые сверху; (строки страницы, есть ли следующая)."""
    account = ledger.account_for(user)
    start = page * per_page
    transactions = list(
        LedgerTransaction.objects.filter(entries__account=account)
        .distinct()
        .order_by("-created_at", "-id")
        .values_list("id", "kind", "idempotency_key", "created_at")[start : start + per_page + 1]
    )
    changes = {
        (row["transaction_id"], row["bucket"]): row["total"]
        for row in LedgerEntry.objects.filter(
            account=account, transaction_id__in=[t[0] for t in transactions]
        )
        .values("transaction_id", "bucket")
        .annotate(total=Sum("amount"))
    }
    history = [
        HistoryRow(
            kind=kind,
            available_change=changes.get((tx_id, LedgerEntry.Bucket.AVAILABLE), 0),
            on_hold_change=changes.get((tx_id, LedgerEntry.Bucket.ON_HOLD), 0),
            created_at=created_at,
            invitee=referrals.invitee_key(key),
        )
        for tx_id, kind, key, created_at in transactions[:per_page]
    ]
    return history, len(transactions) > per_page


def packages_for_sale() -> list[TokenPackage]:
    return list(TokenPackage.objects.filter(is_enabled=True).order_by("order", "stars"))


def card_offers(*, user: TelegramUser, packages: list[TokenPackage]) -> dict[int, list[tuple[str, str]]]:
    """Оплата картой (lava.top) по пакетам: {id пакета: [(валюта, цена)]}; правило — lava.lava_offered."""
    from botapp.billing.lava import lava_offered, lava_price

    offers: dict[int, list[tuple[str, str]]] = {}
    for package in packages:
        priced = [
            (currency, f"{price}")
            for currency in sorted(package.lava_offers)
            if lava_offered(user, package, currency) and (price := lava_price(package, currency)) is not None
        ]
        if priced:
            offers[package.pk] = priced
    return offers
