"""Платежи в админке: выгрузка CSV, «Вернуть» (путь отказа — без Telegram), отметка возврата в lava."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from botapp.billing import ledger, payments, referrals
from botapp.generation import jobs
from botapp.models import (
    LedgerTransaction,
    Payment,
    PaymentMethod,
    Referral,
    StaffAuditLog,
    TelegramUser,
    TransactionKind,
)
from botapp.tests.admin.conftest import changelist, messages_of, run_action
from botapp.tests.billing.factories import balance, package_make, user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support.fakes import fake_bot_token

pytestmark = pytest.mark.django_db


def _payment(user: TelegramUser, **fields: object) -> Payment:
    defaults: dict[str, object] = {
        "method": PaymentMethod.STARS,
        "external_id": f"charge-{Payment.objects.count() + 1}",
        "amount": Decimal(50),
        "currency": "XTR",
        "tokens": 50,
    }
    return Payment.objects.create(user=user, **{**defaults, **fields})


def test_the_csv_export_returns_the_selected_payments(client_staff: Client) -> None:
    user = user_make(telegram_id=555001)
    paid = _payment(user)
    refunded = _payment(
        user, method=PaymentMethod.LAVA, external_id="=HYPERLINK(1)", amount=Decimal("199.00"),
        currency="RUB", tokens=200, status=Payment.Status.REFUNDED, refunded_at=timezone.now(),
    )  # fmt: skip
    response = client_staff.post(
        changelist("payment"),
        {"action": "export_csv", "index": "0", "_selected_action": [paid.pk, refunded.pk]},
    )
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "id", "created", "method", "external_id", "user_telegram_id",
        "amount", "currency", "tokens", "status", "refunded_at",
    ]  # fmt: skip
    assert rows[1] == [
        str(paid.pk), paid.created_at.isoformat(), "stars", paid.external_id, "555001",
        "50.00", "XTR", "50", "paid", "",
    ]  # fmt: skip
    assert rows[2][:9] == [
        str(refunded.pk), refunded.created_at.isoformat(), "lava", "'=HYPERLINK(1)", "555001",
        "199.00", "RUB", "200", "refunded",
    ]  # fmt: skip
    assert rows[2][9] == Payment.objects.get(pk=refunded.pk).refunded_at.isoformat()  # type: ignore[union-attr]
    assert len(rows) == 3


def test_payments_are_filtered_by_method_and_status(client_staff: Client) -> None:
    user = user_make()
    _payment(user, external_id="stars-paid")
    _payment(user, method=PaymentMethod.LAVA, external_id="lava-refunded", status=Payment.Status.REFUNDED)
    page = client_staff.get(changelist("payment"), {"method__exact": "lava", "status__exact": "refunded"})
    assert [p.external_id for p in page.context["cl"].result_list] == ["lava-refunded"]


def test_refunding_an_already_refunded_payment_shows_the_reason(client_staff: Client) -> None:
    user = user_make()
    payment = _payment(user, status=Payment.Status.REFUNDED, refunded_at=timezone.now())
    page = run_action(client_staff, "payment", "refund", [payment.pk])
    [message] = messages_of(page)
    assert f"Платёж #{payment.pk}: возврат отклонён" in message
    assert "возвращён" in message  # причина из RefundRefused: «payment is возвращён»
    assert Payment.objects.get(pk=payment.pk).refund_attempts == 0
    assert not StaffAuditLog.objects.exists()


def test_refunding_spent_tokens_is_refused_before_telegram_and_moves_nothing(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 20)
    payment = _payment(user, tokens=50)
    page = run_action(client_staff, "payment", "refund", [payment.pk])
    [message] = messages_of(page)
    assert "already spent the tokens: 50 needed, 20 available" in message
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID
    assert balance(user) == (20, 0)
    assert not StaffAuditLog.objects.exists()


def test_refunding_tokens_reserved_for_a_running_job_is_refused_with_a_retry_hint(
    client_staff: Client,
) -> None:
    user = user_make()
    user_fund(user, 50)
    payment = _payment(user, tokens=50)
    job = image_job_make(user, key="running")
    assert balance(user) == (36, 14)
    page = run_action(client_staff, "payment", "refund", [payment.pk])
    [message] = messages_of(page)
    assert "already spent" not in message
    assert (
        "14 of the user's tokens are reserved for running jobs: 50 needed, 36 available; "
        "retry the refund after the jobs finish"
    ) in message
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID
    assert balance(user) == (36, 14)
    assert not StaffAuditLog.objects.exists()
    jobs.job_fail(job=job, category="test")


def test_a_card_payment_cannot_be_refunded_as_stars(client_staff: Client) -> None:
    payment = _payment(user_make(), method=PaymentMethod.LAVA, currency="RUB")
    page = run_action(client_staff, "payment", "refund", [payment.pk])
    assert any("not a Stars payment" in text for text in messages_of(page))


def test_the_payment_page_hides_secrets_in_provider_data(client_staff: Client, staff: User) -> None:
    token = fake_bot_token()
    payment = _payment(user_make(), raw={"url": f"https://api.telegram.org/bot{token}/getMe"})
    page = client_staff.get(f"/admin/botapp/payment/{payment.pk}/change/")
    assert page.status_code == 200
    assert token not in page.content.decode()
    assert "[REDACTED]" in page.content.decode()


def _lava_paid(user: TelegramUser, tokens: int = 300) -> Payment:
    """Оплата картой, зачисленная как из вебхука lava: счёт, платёж, проводка покупки."""
    invoice = payments.invoice_create(
        user=user,
        package=package_make(stars=250, tokens=tokens, order=9),
        method=PaymentMethod.LAVA,
        currency="RUB",
        amount=Decimal("199.00"),
    )
    result = payments.payment_complete(
        method=PaymentMethod.LAVA,
        external_id=str(uuid.uuid4()),
        invoice=invoice,
        user=user,
        amount=invoice.amount,
        currency="RUB",
        raw={},
    )
    assert result.created
    assert result.payment.tokens == tokens
    return result.payment


def _refund_posts(payment: Payment) -> list[LedgerTransaction]:
    return list(
        LedgerTransaction.objects.filter(kind=TransactionKind.PAYMENT_REFUND, reference_id=payment.pk)
    )


def test_a_card_payment_refunded_in_lava_is_marked_once_and_its_tokens_taken_back(
    client_staff: Client, staff: User
) -> None:
    user = user_make()
    user_fund(user, 20)
    payment = _lava_paid(user)
    assert balance(user) == (320, 0)
    page = run_action(client_staff, "payment", "mark_lava_refunded", [payment.pk])
    assert messages_of(page) == [f"Платёж #{payment.pk}: отмечен возвращённым, снято токенов: 300."]
    payment.refresh_from_db()
    assert (payment.status, payment.refund_shortfall) == (Payment.Status.REFUNDED, 0)
    assert payment.refunded_at is not None
    assert balance(user) == (20, 0)
    [post] = _refund_posts(payment)
    assert (post.actor, post.user) == (staff, user)
    [audit] = StaffAuditLog.objects.all()
    assert (audit.actor, audit.action, audit.target_id) == (staff, "payment.refund_external", str(payment.pk))
    assert audit.details == {"taken": 300, "shortfall": 0, "reserved": 0}

    # Второе нажатие (двойной клик, «назад» в браузере) ничего не меняет
    page = run_action(client_staff, "payment", "mark_lava_refunded", [payment.pk])
    [message] = messages_of(page)
    assert f"Платёж #{payment.pk}: не отмечен" in message
    assert "already refunded" in message
    assert balance(user) == (20, 0)
    assert len(_refund_posts(payment)) == 1
    assert StaffAuditLog.objects.count() == 1


def test_marking_a_lava_refund_takes_only_unspent_tokens_and_records_the_shortfall(
    client_staff: Client,
) -> None:
    user = user_make()
    payment = _lava_paid(user, tokens=300)
    spent = ledger.hold(user=user, amount=250, key="test-spend")
    ledger.capture(hold=spent, amount=250)
    page = run_action(client_staff, "payment", "mark_lava_refunded", [payment.pk])
    [message] = messages_of(page)
    assert "снято токенов: 50" in message
    assert "250 уже потрачены" in message
    payment.refresh_from_db()
    assert (payment.status, payment.refund_shortfall) == (Payment.Status.REFUNDED, 250)
    assert balance(user) == (0, 0)  # баланс не уходит в минус
    [audit] = StaffAuditLog.objects.all()
    assert audit.details == {"taken": 50, "shortfall": 250, "reserved": 0}


def test_marking_a_lava_refund_tells_reserved_from_spent_and_takes_the_reserved_when_released(
    client_staff: Client,
) -> None:
    user = user_make()
    payment = _lava_paid(user, tokens=300)
    ledger.capture(hold=ledger.hold(user=user, amount=200, key="test-spend"), amount=200)
    job = image_job_make(user, key="running", outputs=4)
    assert balance(user) == (46, 54)
    page = run_action(client_staff, "payment", "mark_lava_refunded", [payment.pk])
    assert messages_of(page) == [
        f"Платёж #{payment.pk}: отмечен возвращённым, снято токенов: 46; 54 в резерве под идущие задания — "
        "спишутся, когда их холды вернутся; 200 уже потрачены. Недостача записана в платёж и долгом "
        "пользователя."
    ]
    assert Payment.objects.get(pk=payment.pk).refund_shortfall == 254
    [audit] = StaffAuditLog.objects.all()
    assert audit.details == {"taken": 46, "shortfall": 254, "reserved": 54}
    assert balance(user) == (0, 54)
    jobs.job_fail(job=job, category="test")
    assert balance(user) == (0, 0)  # вернувшийся холд целиком ушёл в погашение
    assert ledger.debt_outstanding(user=user) == 200


def test_marking_a_lava_refund_cancels_the_referral_rewards_of_that_payment_once(
    client_staff: Client,
) -> None:
    inviter, friend = user_make(), user_make()
    code = referrals.referral_code_for(user=inviter)
    assert referrals.referral_attach(invitee=friend, code=code) == "attached"
    payment = _lava_paid(friend, tokens=300)
    assert (balance(inviter), balance(friend)) == ((30, 0), (320, 0))
    page = run_action(client_staff, "payment", "mark_lava_refunded", [payment.pk])
    assert messages_of(page) == [
        f"Платёж #{payment.pk}: отмечен возвращённым, снято токенов: 300. "
        "Награда за приглашение по этому платежу отменена."
    ]
    assert (balance(inviter), balance(friend)) == ((0, 0), (0, 0))
    referral = Referral.objects.get()
    assert referral.reversed_at is not None
    [audit] = StaffAuditLog.objects.all()
    assert audit.details["referral_reversed"] == referral.pk
    run_action(client_staff, "payment", "mark_lava_refunded", [payment.pk])
    assert (balance(inviter), balance(friend)) == ((0, 0), (0, 0))
    assert LedgerTransaction.objects.filter(kind=TransactionKind.REFERRAL_REVERSAL).count() == 2


def test_a_stars_payment_cannot_be_marked_refunded_in_lava(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 50)
    payment = _payment(user)
    page = run_action(client_staff, "payment", "mark_lava_refunded", [payment.pk])
    [message] = messages_of(page)
    assert "not a lava.top payment" in message
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID
    assert balance(user) == (50, 0)
    assert not StaffAuditLog.objects.exists()
