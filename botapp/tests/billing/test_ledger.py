"""Журнал: холд, списание, возврат, корректировка — идемпотентно и без ухода в минус."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from botapp.billing import ledger
from botapp.billing.errors import HoldAlreadySettled, InsufficientFunds
from botapp.models import (
    Account,
    Hold,
    LedgerEntry,
    LedgerTransaction,
    RefundDebt,
    StaffAuditLog,
    TelegramUser,
    TransactionKind,
)
from botapp.tests.billing.factories import balance, user_fund, user_make

pytestmark = pytest.mark.django_db


def test_hold_moves_tokens_from_available_to_on_hold() -> None:
    user = user_make()
    user_fund(user, 100)
    ledger.hold(user=user, amount=30, key="job-1")
    assert balance(user) == (70, 30)


def test_hold_refuses_overdraft_and_changes_nothing() -> None:
    user = user_make()
    user_fund(user, 10)
    with pytest.raises(InsufficientFunds):
        ledger.hold(user=user, amount=11, key="job-1")
    assert balance(user) == (10, 0)
    assert not Hold.objects.exists()


def test_hold_with_the_same_key_returns_the_same_hold() -> None:
    user = user_make()
    user_fund(user, 100)
    first = ledger.hold(user=user, amount=30, key="job-1")
    second = ledger.hold(user=user, amount=30, key="job-1")
    assert first.pk == second.pk
    assert balance(user) == (70, 30)


def test_full_capture_moves_the_hold_to_consumption() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=30, key="job-1")
    result = ledger.capture(hold=held, amount=30)
    assert (result.captured, result.released) == (30, 0)
    assert balance(user) == (70, 0)


def test_partial_capture_releases_the_rest_in_the_same_transaction() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=40, key="job-1")
    result = ledger.capture(hold=held, amount=10)
    assert (result.captured, result.released) == (10, 30)
    assert balance(user) == (90, 0)
    settlement = LedgerTransaction.objects.get(idempotency_key=f"settle:hold:{held.pk}")
    assert sorted(settlement.entries.values_list("amount", flat=True)) == [-40, 10, 30]


def test_capture_twice_is_unchanged_and_returns_the_same_result() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=30, key="job-1")
    ledger.capture(hold=held, amount=20)
    again = ledger.capture(hold=held, amount=20)
    assert again.replayed
    assert (again.captured, again.released) == (20, 10)
    assert balance(user) == (80, 0)


def test_release_twice_is_unchanged() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=30, key="job-1")
    ledger.release(hold=held, reason="provider failed")
    again = ledger.release(hold=held, reason="provider failed")
    assert again.replayed
    assert balance(user) == (100, 0)


def test_a_second_different_settlement_is_refused() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=30, key="job-1")
    ledger.capture(hold=held, amount=30)
    with pytest.raises(HoldAlreadySettled):
        ledger.release(hold=held, reason="late failure")
    with pytest.raises(HoldAlreadySettled):
        ledger.capture(hold=held, amount=10)
    assert balance(user) == (70, 0)


def test_capture_more_than_held_is_refused() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=30, key="job-1")
    with pytest.raises(ValueError, match="outside"):
        ledger.capture(hold=held, amount=31)
    assert Hold.objects.get(pk=held.pk).status == Hold.Status.ACTIVE


def test_capture_of_zero_is_a_release() -> None:
    user = user_make()
    user_fund(user, 50)
    held = ledger.hold(user=user, amount=30, key="job-1")
    result = ledger.capture(hold=held, amount=0)
    assert result.status == Hold.Status.RELEASED
    assert balance(user) == (50, 0)


def test_every_transaction_sums_to_zero_and_records_resulting_balances() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=30, key="job-1")
    ledger.capture(hold=held, amount=25)
    for tx in LedgerTransaction.objects.all():
        assert sum(tx.entries.values_list("amount", flat=True)) == 0
    last_available = LedgerEntry.objects.filter(
        account__user=user, bucket=LedgerEntry.Bucket.AVAILABLE
    ).latest("pk")
    assert last_available.balance_after == 75


def test_credit_with_a_used_key_changes_nothing() -> None:
    user = user_make()
    user_fund(user, 100, key="gift")
    user_fund(user, 100, key="gift")
    assert balance(user) == (100, 0)


def test_the_database_refuses_a_negative_balance_even_without_the_service() -> None:
    user = user_make()
    account = ledger.account_for(user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(available=-1)


def test_the_database_refuses_a_duplicate_idempotency_key() -> None:
    user = user_make()
    user_fund(user, 10, key="once")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LedgerTransaction._meta.db_table} (idempotency_key, kind, reference_id, reason, "  # noqa: S608
            "created_at) VALUES ('once', 'adjustment', '', '', now())"
        )


def test_adjust_requires_a_reason_and_records_the_staff_member() -> None:
    staff = get_user_model().objects.create_user("anna", is_staff=True)
    user = user_make()
    with pytest.raises(ValueError, match="reason"):
        ledger.adjust(user=user, amount=5, actor=staff, reason=" ", key="adj-1")
    ledger.adjust(user=user, amount=50, actor=staff, reason="compensation for an outage", key="adj-2")
    ledger.adjust(user=user, amount=-20, actor=staff, reason="duplicate compensation", key="adj-3")
    assert balance(user) == (30, 0)
    tx = LedgerTransaction.objects.get(idempotency_key="adj-3")
    assert tx.actor == staff
    assert tx.reason == "duplicate compensation"
    assert StaffAuditLog.objects.filter(actor=staff, action="balance.adjust").count() == 2


def test_adjust_cannot_take_more_than_available() -> None:
    staff = get_user_model().objects.create_user("anna", is_staff=True)
    user = user_make()
    user_fund(user, 10)
    with pytest.raises(InsufficientFunds):
        ledger.adjust(user=user, amount=-11, actor=staff, reason="typo", key="adj-1")
    assert balance(user) == (10, 0)
    assert not StaffAuditLog.objects.exists()


def _refund_taken_back(user: TelegramUser, amount: int, key: str = "refund-1") -> ledger.TakeBack:
    """Деньги вернули у провайдера: забрать amount токенов (как payment_refunded_externally)."""
    return ledger.take_back(
        user=user, amount=amount, key=key, kind=TransactionKind.PAYMENT_REFUND,
        destination=ledger.SALES_STARS, reference=user,
    )  # fmt: skip


def test_take_back_takes_the_available_part_and_records_the_reserved_rest_as_debt() -> None:
    user = user_make()
    user_fund(user, 70)
    ledger.hold(user=user, amount=54, key="job-1")
    outcome = _refund_taken_back(user, 50)
    assert (outcome.taken, outcome.owed, outcome.reserved, outcome.spent) == (16, 34, 34, 0)
    assert balance(user) == (0, 54)
    assert ledger.debt_outstanding(user=user) == 34
    debt = RefundDebt.objects.get()
    assert (debt.amount, debt.reserved, debt.repaid, debt.destination) == (34, 34, 0, ledger.SALES_STARS)


def test_a_released_hold_repays_the_refund_debt_first_and_only_once() -> None:
    user = user_make()
    user_fund(user, 70)
    held = ledger.hold(user=user, amount=54, key="job-1")
    _refund_taken_back(user, 50)
    settled = ledger.release(hold=held, reason="provider failed")
    assert (settled.released, settled.debt_repaid) == (54, 34)
    assert balance(user) == (20, 0)
    assert ledger.debt_outstanding(user=user) == 0
    debt = RefundDebt.objects.get()
    assert debt.repaid == 34
    assert debt.repaid_at is not None
    [repayment] = LedgerTransaction.objects.filter(reference_type="botapp.refunddebt")
    assert (repayment.kind, repayment.idempotency_key) == (
        TransactionKind.PAYMENT_REFUND,
        f"debt:{debt.pk}:hold:{held.pk}",
    )
    again = ledger.release(hold=held, reason="provider failed")
    assert again.replayed
    assert balance(user) == (20, 0)
    assert LedgerTransaction.objects.filter(reference_type="botapp.refunddebt").count() == 1


def test_only_the_released_part_of_a_capture_repays_and_older_debts_go_first() -> None:
    user = user_make()
    user_fund(user, 100)
    first_job = ledger.hold(user=user, amount=100, key="job-1")
    _refund_taken_back(user, 40, key="refund-1")
    _refund_taken_back(user, 20, key="refund-2")
    assert balance(user) == (0, 100)
    settled = ledger.capture(hold=first_job, amount=70)
    assert (settled.released, settled.debt_repaid) == (30, 30)
    assert balance(user) == (0, 0)
    assert list(RefundDebt.objects.order_by("pk").values_list("repaid", flat=True)) == [30, 0]
    user_fund(user, 50)
    ledger.release(hold=ledger.hold(user=user, amount=50, key="job-2"), reason="cancelled")
    assert list(RefundDebt.objects.order_by("pk").values_list("repaid", flat=True)) == [40, 20]
    assert balance(user) == (20, 0)
    assert ledger.debt_outstanding(user=user) == 0


def test_the_database_refuses_to_repay_more_than_the_debt() -> None:
    user = user_make()
    _refund_taken_back(user, 10)
    with pytest.raises(IntegrityError), transaction.atomic():
        RefundDebt.objects.update(repaid=11)
