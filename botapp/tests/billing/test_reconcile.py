"""Сверка: проходит на честных данных и ловит каждую испорченную инвариантность."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from botapp.billing import ledger, reconcile
from botapp.models import Account, ErrorGroup, Hold, LedgerEntry, RefundDebt, TransactionKind
from botapp.tests.billing.factories import user_fund, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded() -> Account:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=30, key="job-1")
    ledger.capture(hold=held, amount=20)
    return ledger.account_for(user)


def _sql(statement: str, params: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_honest_books_reconcile(funded: Account) -> None:
    report = reconcile.reconcile_ledger()
    assert report.ok, report.summary()
    call_command("reconcile")


def test_a_corrupted_cached_balance_is_detected_and_alerted(funded: Account) -> None:
    Account.objects.filter(pk=funded.pk).update(available=funded.available + 5)
    with pytest.raises(CommandError, match="cached balance differs from ledger"):
        call_command("reconcile", "--alert")
    assert ErrorGroup.objects.filter(source="billing.reconcile").exists()
    Account.objects.filter(pk=funded.pk).update(available=funded.available)


def test_an_entry_that_breaks_the_zero_sum_is_detected(funded: Account) -> None:
    entry = LedgerEntry.objects.filter(account=funded).first()
    assert entry is not None
    LedgerEntry.objects.filter(pk=entry.pk).update(amount=entry.amount + 1)
    report = reconcile.reconcile_ledger()
    assert "ledger sum is not zero" in report.problems
    assert "transaction does not balance" in report.problems
    LedgerEntry.objects.filter(pk=entry.pk).update(amount=entry.amount)


def test_a_hold_settled_twice_is_detected(funded: Account) -> None:
    held = Hold.objects.get()
    # Вторая проводка урегулирования в обход сервисов (и уникального ключа)
    _sql(
        "INSERT INTO botapp_ledgertransaction (idempotency_key, kind, reference_type, reference_id, reason, "
        "created_at) VALUES ('forged', 'release', 'botapp.hold', %s, '', now())",
        [str(held.pk)],
    )
    report = reconcile.reconcile_ledger()
    assert "hold settled more than once" in report.problems
    _sql("DELETE FROM botapp_ledgertransaction WHERE idempotency_key = 'forged'", [])


def test_an_active_hold_that_is_not_on_the_balance_is_detected(funded: Account) -> None:
    Hold.objects.create(account=funded, amount=7, idempotency_key="ghost")
    report = reconcile.reconcile_ledger()
    assert "on-hold balance differs from active holds" in report.problems
    Hold.objects.filter(idempotency_key="ghost").delete()


def test_a_refund_debt_marked_repaid_without_a_repayment_posting_is_detected(funded: Account) -> None:
    assert funded.user is not None
    ledger.hold(user=funded.user, amount=80, key="job-2")
    ledger.take_back(
        user=funded.user, amount=50, key="refund-1", kind=TransactionKind.PAYMENT_REFUND,
        destination=ledger.SALES_STARS, reference=funded,
    )  # fmt: skip
    RefundDebt.objects.update(repaid=10)
    report = reconcile.reconcile_ledger()
    assert "refund debt repaid differs from its ledger postings" in report.problems
    RefundDebt.objects.update(repaid=0)
    assert reconcile.reconcile_ledger().ok
