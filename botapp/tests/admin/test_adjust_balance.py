"""Корректировка баланса из админки: только через журнал, с причиной, один раз на форму."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from botapp.billing import ledger
from botapp.models import LedgerTransaction, StaffAuditLog, TelegramUser, TransactionKind
from botapp.tests.admin.conftest import messages_of, run_action, verified_client
from botapp.tests.billing.factories import balance, user_fund, user_make

pytestmark = pytest.mark.django_db

NONCE = "a" * 32


def _adjust(client: Client, user: TelegramUser, **fields: str) -> Any:
    return run_action(client, "telegramuser", "adjust_balance", [user.pk], apply="1", **fields)


def _adjustments(user: TelegramUser) -> int:
    return LedgerTransaction.objects.filter(
        user=user, kind=TransactionKind.ADJUSTMENT, actor__isnull=False
    ).count()


def test_the_action_shows_a_form_with_a_fresh_nonce(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 15)
    page = run_action(client_staff, "telegramuser", "adjust_balance", [user.pk])
    html = page.content.decode()
    assert "Корректировка баланса" in html
    assert "Доступно: <strong>15</strong>" in html
    assert re.search(r'name="nonce" value="[0-9a-f]{32}"', html)
    assert balance(user) == (15, 0)


def test_an_adjustment_without_a_reason_is_refused_and_changes_nothing(client_staff: Client) -> None:
    user = user_make()
    page = _adjust(client_staff, user, amount="50", reason="   ", nonce=NONCE)
    assert "Обязательное поле" in page.content.decode() or "Укажите причину" in page.content.decode()
    assert balance(user) == (0, 0)
    assert _adjustments(user) == 0
    assert not StaffAuditLog.objects.exists()


def test_a_zero_adjustment_is_refused(client_staff: Client) -> None:
    user = user_make()
    page = _adjust(client_staff, user, amount="0", reason="why not", nonce=NONCE)
    assert "Сумма не может быть нулём" in page.content.decode()
    assert _adjustments(user) == 0


def test_an_adjustment_with_a_reason_posts_to_the_ledger_and_the_audit_log(
    client_staff: Client, staff: User
) -> None:
    user = user_make()
    user_fund(user, 10)
    page = _adjust(client_staff, user, amount="25", reason="компенсация за сбой", nonce=NONCE)
    assert page.redirect_chain[-1][0].endswith("/admin/botapp/telegramuser/")
    assert any("изменён на +25" in text for text in messages_of(page))
    assert balance(user) == (35, 0)
    tx = LedgerTransaction.objects.get(user=user, kind=TransactionKind.ADJUSTMENT, actor=staff)
    assert tx.reason == "компенсация за сбой"
    assert tx.idempotency_key == f"admin-adjust:{user.pk}:{NONCE}"
    audit = StaffAuditLog.objects.get(action="balance.adjust")
    assert audit.actor == staff
    assert audit.target_id == str(user.pk)
    assert audit.details == {"amount": 25, "reason": "компенсация за сбой", "transaction": tx.pk}


def test_submitting_the_same_form_twice_adjusts_once(client_staff: Client) -> None:
    user = user_make()
    _adjust(client_staff, user, amount="30", reason="бонус", nonce=NONCE)
    again = _adjust(client_staff, user, amount="30", reason="бонус", nonce=NONCE)
    assert any("уже была отправлена" in text for text in messages_of(again))
    assert balance(user) == (30, 0)
    assert _adjustments(user) == 1
    assert StaffAuditLog.objects.filter(action="balance.adjust").count() == 1


def test_a_new_form_is_a_new_adjustment(client_staff: Client) -> None:
    user = user_make()
    _adjust(client_staff, user, amount="30", reason="бонус", nonce=NONCE)
    _adjust(client_staff, user, amount="30", reason="бонус", nonce="f" * 32)
    assert balance(user) == (60, 0)


def test_a_negative_adjustment_takes_tokens_back(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 40)
    _adjust(client_staff, user, amount="-15", reason="ошибочное начисление", nonce=NONCE)
    assert balance(user) == (25, 0)


def test_a_negative_adjustment_beyond_the_balance_shows_an_error_and_changes_nothing(
    client_staff: Client,
) -> None:
    user = user_make()
    user_fund(user, 10)
    ledger.hold(user=user, amount=4, key="job-1")
    page = _adjust(client_staff, user, amount="-7", reason="списание", nonce=NONCE)
    html = page.content.decode()
    assert "Недостаточно доступных токенов: доступно 6" in html
    assert any("не хватает токенов" in text for text in messages_of(page))
    assert balance(user) == (6, 4)
    assert _adjustments(user) == 0
    assert not StaffAuditLog.objects.exists()
    # Та же форма с исправленной суммой проходит: неудачная попытка ключ не заняла
    _adjust(client_staff, user, amount="-6", reason="списание", nonce=NONCE)
    assert balance(user) == (0, 4)


def test_the_adjustment_is_for_exactly_one_user(client_staff: Client) -> None:
    first, second = user_make(), user_make()
    page = _adjust(client_staff, first, amount="5", reason="x", nonce=NONCE)
    assert balance(first) == (5, 0)
    page = run_action(
        client_staff, "telegramuser", "adjust_balance", [first.pk, second.pk], apply="1",
        amount="5", reason="x", nonce="e" * 32,
    )  # fmt: skip
    assert any("ровно одному пользователю" in text for text in messages_of(page))
    assert balance(first) == (5, 0)
    assert balance(second) == (0, 0)


def test_an_account_can_be_adjusted_from_the_accounts_list(client_staff: Client) -> None:
    user = user_make()
    account = ledger.account_for(user)
    run_action(
        client_staff,
        "account",
        "adjust_balance",
        [account.pk],
        apply="1",
        amount="12",
        reason="r",
        nonce=NONCE,
    )
    assert balance(user) == (12, 0)


def test_a_system_account_cannot_be_adjusted(client_staff: Client) -> None:
    system_id = ledger.system_account_id(ledger.ADJUSTMENTS)
    page = run_action(
        client_staff,
        "account",
        "adjust_balance",
        [system_id],
        apply="1",
        amount="12",
        reason="r",
        nonce=NONCE,
    )
    assert any("ровно одному пользователю" in text for text in messages_of(page))
    assert not LedgerTransaction.objects.filter(kind=TransactionKind.ADJUSTMENT).exists()


def test_staff_without_the_ledger_permission_do_not_see_the_action(db: object) -> None:
    from django.contrib.auth.models import Permission

    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_telegramuser"))
    client = verified_client(clerk)
    user = user_make()
    page = client.get("/admin/botapp/telegramuser/")
    assert page.status_code == 200
    assert "adjust_balance" not in page.content.decode()
    response = run_action(
        client, "telegramuser", "adjust_balance", [user.pk], apply="1", amount="5", reason="x", nonce=NONCE
    )
    assert response.status_code == 200
    assert balance(user) == (0, 0)
