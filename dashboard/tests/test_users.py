"""Панель: пользователи — поиск, карточка, корректировка баланса (один раз на форму), бан, сообщение."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from botapp.generation import jobs
from botapp.models import (
    GenerationModel,
    JobOutput,
    LedgerTransaction,
    Payment,
    Referral,
    StaffAuditLog,
    TelegramUser,
)
from botapp.tests.admin.conftest import form_nonce, verified_client
from botapp.tests.billing.factories import balance, user_fund, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("olga", password="pw", is_staff=True)  # pragma: allowlist secret


@pytest.fixture
def client_staff(staff: User) -> Client:
    return verified_client(staff)


@pytest.fixture
def client_money() -> Client:
    cashier = User.objects.create_user("mila", password="pw", is_staff=True)  # pragma: allowlist secret
    cashier.user_permissions.add(Permission.objects.get(codename="add_ledgertransaction"))
    return verified_client(cashier)


@pytest.fixture
def client_ban() -> Client:
    moderator = User.objects.create_user("vera", password="pw", is_staff=True)  # pragma: allowlist secret
    moderator.user_permissions.add(Permission.objects.get(codename="change_telegramuser"))
    return verified_client(moderator)


def _messages(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


def _nonce(client: Client, user: TelegramUser) -> str:
    return form_nonce(client, f"/dashboard/users/{user.pk}/")


@pytest.mark.parametrize(
    "url", ["/dashboard/users/", "/dashboard/users/1/", "/dashboard/support/", "/dashboard/generations/"]
)
def test_pages_send_non_staff_to_the_login(url: str) -> None:
    visitor = User.objects.create_user("visitor", password="pw")  # pragma: allowlist secret
    client = Client()
    client.force_login(visitor)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/")


def test_search_finds_by_telegram_id_username_and_name(client_staff: Client) -> None:
    anna = TelegramUser.objects.create(
        telegram_id=555001, first_name="Анна", last_name="Петрова", username="annp"
    )
    boris = TelegramUser.objects.create(telegram_id=555002, first_name="Борис", username="bor")
    for query, found, missing in [
        ("555001", anna, boris),
        ("@bor", boris, anna),
        ("анна петрова", anna, boris),
    ]:
        page = client_staff.get("/dashboard/users/", {"q": query}).content.decode()
        assert f"/dashboard/users/{found.pk}/" in page, query
        assert f"/dashboard/users/{missing.pk}/" not in page, query


def test_the_user_page_shows_balance_ledger_jobs_payments_and_referrals(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job, _ = jobs.job_create(
        user=user,
        model=GenerationModel.objects.get(slug="nano-banana-2"),
        prompt="a cat on the moon",
        params={"aspect_ratio": "1:1", "size": "1K", "outputs": 1},
        reference_file_ids=[],
        idempotency_key="dash-user-page",
    )
    JobOutput.objects.create(job=job, index=0, status="ok", storage_key=f"jobs/{job.pk}/0.png")
    Payment.objects.create(
        method="stars", external_id="charge-1", user=user, amount=Decimal(50), currency="XTR", tokens=50
    )
    friend = user_make()
    Referral.objects.create(inviter=user, invitee=friend)
    page = client_staff.get(f"/dashboard/users/{user.pk}/").content.decode()
    assert ">86<" in page
    assert ">14<" in page
    assert "adjustment" in page  # строка журнала токенов
    assert "a cat on the moon" in page
    assert "/media/s/" in page  # миниатюра результата по подписанной ссылке
    assert "50 XTR" in page
    assert f"/dashboard/users/{friend.pk}/" in page
    jobs.job_fail(job=job, category="test")


def test_the_ledger_is_paged(client_staff: Client) -> None:
    user = user_make()
    for n in range(25):
        user_fund(user, 1, key=f"page-{n}")
    first = client_staff.get(f"/dashboard/users/{user.pk}/").content.decode()
    assert "?page=1" in first
    second = client_staff.get(f"/dashboard/users/{user.pk}/", {"page": 1}).content.decode()
    assert second.count("<td>+1</td>") == 5


def test_an_adjustment_submitted_twice_moves_the_balance_once(client_money: Client) -> None:
    user = user_make()
    form = {"amount": "40", "reason": "compensation for ticket 12", "nonce": _nonce(client_money, user)}
    first = client_money.post(f"/dashboard/users/{user.pk}/adjust/", form, follow=True)
    second = client_money.post(f"/dashboard/users/{user.pk}/adjust/", form, follow=True)
    assert balance(user) == (40, 0)
    assert LedgerTransaction.objects.filter(user=user, kind="adjustment").count() == 1
    assert StaffAuditLog.objects.filter(action="balance.adjust", target_id=str(user.pk)).count() == 1
    assert any("проведена" in m for m in _messages(first))
    assert any("уже была отправлена" in m for m in _messages(second))


def test_an_adjustment_needs_a_reason_and_the_money_permission(
    client_staff: Client, client_money: Client
) -> None:
    user = user_make()
    nonce = _nonce(client_money, user)
    response = client_staff.post(
        f"/dashboard/users/{user.pk}/adjust/", {"amount": "5", "reason": "x", "nonce": nonce}
    )
    assert response.status_code == 403
    client_money.post(f"/dashboard/users/{user.pk}/adjust/", {"amount": "5", "reason": "  ", "nonce": nonce})
    assert not LedgerTransaction.objects.filter(user=user).exists()


def test_the_adjustment_form_refuses_requests_without_csrf(staff: User) -> None:
    staff.user_permissions.add(Permission.objects.get(codename="add_ledgertransaction"))
    client = verified_client(User.objects.get(pk=staff.pk))
    client.handler.enforce_csrf_checks = True
    user = user_make()
    form = {"amount": "5", "reason": "no token", "nonce": "a" * 32}
    assert client.post(f"/dashboard/users/{user.pk}/adjust/", form).status_code == 403
    assert not LedgerTransaction.objects.filter(user=user).exists()


def test_a_debit_beyond_the_balance_is_refused(client_money: Client) -> None:
    user = user_make()
    user_fund(user, 10)
    form = {"amount": "-50", "reason": "chargeback", "nonce": _nonce(client_money, user)}
    response = client_money.post(f"/dashboard/users/{user.pk}/adjust/", form, follow=True)
    assert balance(user) == (10, 0)
    assert any("больше доступного" in m for m in _messages(response))


def test_ban_and_unban_are_audited(client_ban: Client) -> None:
    user = user_make()
    assert "Забанить" in client_ban.get(f"/dashboard/users/{user.pk}/").content.decode()
    client_ban.post(f"/dashboard/users/{user.pk}/ban/", {"banned": "1"})
    assert TelegramUser.objects.get(pk=user.pk).is_banned
    client_ban.post(f"/dashboard/users/{user.pk}/ban/", {"banned": "1"})  # повтор ничего не меняет
    client_ban.post(f"/dashboard/users/{user.pk}/ban/", {"banned": "0"})
    assert not TelegramUser.objects.get(pk=user.pk).is_banned
    actions = list(
        StaffAuditLog.objects.filter(target_id=str(user.pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["user.ban", "user.unban"]


def test_staff_without_the_ban_permission_can_neither_ban_nor_see_the_form(client_staff: Client) -> None:
    """Бан — право botapp.change_telegramuser, как в админке: одного is_staff мало."""
    user = user_make()
    assert "/ban/" not in client_staff.get(f"/dashboard/users/{user.pk}/").content.decode()
    assert client_staff.post(f"/dashboard/users/{user.pk}/ban/", {"banned": "1"}).status_code == 403
    assert not TelegramUser.objects.get(pk=user.pk).is_banned
    assert not StaffAuditLog.objects.filter(action="user.ban").exists()
