"""Сверка звёзд с getStarTransactions: эмулятор Bot API по HTTP, как у настоящего Telegram.

Эмулятор отдаёт транзакции в хронологическом порядке, offset — сколько пропустить, limit — 1…100.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from botapp.billing import catalog_admin, payments, stars
from botapp.models import Payment, PricingSettings, TelegramUser, TokenPackage
from botapp.sandbox import services
from botapp.sandbox.models import SandboxStarPayment
from botapp.tests.billing.factories import balance, user_make
from botapp.tests.sandbox.conftest import sandbox_bot_api, sandbox_mode_server  # noqa: F401 — общие фикстуры

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Больше, чем прежний проход (1000 транзакций от cursor - 100) успевал прочитать за раз
OTHER_BOTS_PAYMENTS = 1149


@pytest.fixture
def bot_api(sandbox_bot_api: str) -> str:  # noqa: F811 — параметр-фикстура, не переопределение
    return sandbox_bot_api


def _history(count: int) -> None:
    """Давние оплаты звёздами, не наши (чужой payload): сверка их пропускает, но листает."""
    SandboxStarPayment.objects.bulk_create(
        SandboxStarPayment(
            charge_id=f"stxOLD{index:05d}", user_id=9_000_000 + index, amount=1, invoice_payload="other"
        )
        for index in range(count)
    )
    SandboxStarPayment.objects.update(created_at=timezone.now() - timedelta(days=30))


def _lost_payment(user: TelegramUser) -> str:
    """Оплата нашего счёта, чей successful_payment до бота не дошёл; возвращает charge id."""
    invoice = payments.invoice_create_stars(user=user, package=TokenPackage.objects.get(stars=50))
    charge_id = "stxLOST" + secrets.token_urlsafe(12)
    SandboxStarPayment.objects.create(
        charge_id=charge_id,
        user_id=user.telegram_id,
        amount=int(invoice.amount),
        invoice_payload=payments.invoice_payload(invoice),
    )
    return charge_id


def _offsets() -> list[int]:
    calls = services.sandbox_calls(method="getStarTransactions")
    return [int(call.params.get("offset", 0)) for call in calls]


def test_one_run_reads_to_the_end_of_a_long_history_and_credits_the_lost_payment(bot_api: str) -> None:
    _history(OTHER_BOTS_PAYMENTS)
    user = user_make()
    charge_id = _lost_payment(user)
    total = OTHER_BOTS_PAYMENTS + 1
    assert len(stars.stars_reconcile()) == 1
    assert Payment.objects.get(external_id=charge_id).tokens == 50
    assert balance(user) == (50, 0)
    # Страницы по 100 (больше Telegram не отдаёт) подряд до короткой последней
    calls = services.sandbox_calls(method="getStarTransactions")
    assert [int(call.params["limit"]) for call in calls] == [100] * 12
    assert _offsets() == list(range(0, total, 100))
    assert stars.stars_reconcile_cursor() == total
    # Следующий проход начинается от курсора из БД с перекрытием в 100, а не с нуля
    assert len(stars.stars_reconcile()) == 0
    assert _offsets()[12:] == [total - 100, total]
    assert Payment.objects.count() == 1


def test_a_run_stopped_by_its_page_limit_is_continued_by_the_next(bot_api: str) -> None:
    _history(250)
    user = user_make()
    charge_id = _lost_payment(user)
    with override_settings(STARS_RECONCILE_MAX_PAGES=2):
        assert len(stars.stars_reconcile()) == 0
        assert stars.stars_reconcile_cursor() == 200
        assert len(stars.stars_reconcile()) == 1  # с 100 (перекрытие): 100…199, 200…250 — конец
    assert _offsets() == [0, 100, 100, 200]
    assert stars.stars_reconcile_cursor() == 251
    assert Payment.objects.filter(external_id=charge_id).exists()


def test_the_cursor_never_moves_back_and_a_pricing_save_does_not_touch_it(bot_api: str) -> None:
    _history(150)
    stars.stars_reconcile()
    assert stars.stars_reconcile_cursor() == 150
    # Настройки цен прочитаны до прохода сверки, сохранены после: курсор остаётся
    stale = PricingSettings.objects.get(pk=1)
    PricingSettings.objects.filter(pk=1).update(stars_reconciled_offset=400)
    stale.markup = stale.markup + 1
    catalog_admin.staff_save(obj=stale, actor=User.objects.create_user("anna"))
    row = PricingSettings.objects.get(pk=1)
    assert (row.markup, row.stars_reconciled_offset) == (stale.markup, 400)
    # Проход, начавший с меньшего курсора (параллельный), его не откатывает
    stars.stars_reconcile()
    assert stars.stars_reconcile_cursor() == 400
