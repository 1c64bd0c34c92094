"""Пользователи в админке: поиск, баланс только для чтения, бан и разбан с аудитом."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from botapp.billing import ledger
from botapp.models import StaffAuditLog, TelegramUser
from botapp.tests.admin.conftest import changelist, run_action
from botapp.tests.billing.factories import user_fund, user_make

pytestmark = pytest.mark.django_db


def test_users_are_found_by_telegram_id_username_and_name(client_staff: Client) -> None:
    alice = user_make(telegram_id=4242001)
    TelegramUser.objects.filter(pk=alice.pk).update(username="alice_b", last_name="Smith")
    user_make(telegram_id=4242002)
    for term in ("4242001", "alice_b", "Smith"):
        page = client_staff.get(changelist("telegramuser"), {"q": term})
        assert [u.pk for u in page.context["cl"].result_list] == [alice.pk], term


def test_the_list_and_page_show_available_and_held_tokens(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 50)
    ledger.hold(user=user, amount=12, key="job-1")
    page = client_staff.get(changelist("telegramuser"), {"q": str(user.telegram_id)})
    [row] = page.context["cl"].result_list
    assert (row.available_tokens, row.on_hold_tokens) == (38, 12)
    detail = client_staff.get(reverse("admin:botapp_telegramuser_change", args=[user.pk]))
    form = detail.context["adminform"].form
    assert list(form.fields) == ["is_banned"]  # баланс и остальное — только чтение
    assert f"?user__id__exact={user.pk}" in detail.content.decode()


def test_ban_and_unban_actions_are_audited(client_staff: Client, staff: User) -> None:
    user = user_make()
    run_action(client_staff, "telegramuser", "ban", [user.pk])
    run_action(client_staff, "telegramuser", "ban", [user.pk])
    assert TelegramUser.objects.get(pk=user.pk).is_banned
    run_action(client_staff, "telegramuser", "unban", [user.pk])
    assert not TelegramUser.objects.get(pk=user.pk).is_banned
    actions = list(StaffAuditLog.objects.order_by("pk").values_list("action", "actor", "target_id"))
    assert actions == [("user.ban", staff.pk, str(user.pk)), ("user.unban", staff.pk, str(user.pk))]


def test_editing_the_ban_flag_on_the_page_is_audited_and_changes_nothing_else(
    client_staff: Client, staff: User
) -> None:
    user = user_make()
    user_fund(user, 10)
    url = reverse("admin:botapp_telegramuser_change", args=[user.pk])
    response = client_staff.post(url, {"is_banned": "on", "first_name": "Hacked", "telegram_id": "1"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_banned
    assert user.first_name != "Hacked"
    assert user.telegram_id != 1
    assert StaffAuditLog.objects.get().action == "user.ban"
    assert ledger.account_for(user).available == 10
