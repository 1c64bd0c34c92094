"""Журналы и платежи в админке только для чтения: ни добавить, ни изменить, ни удалить."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse

from botapp.billing import ledger
from botapp.models import (
    Account,
    Hold,
    Invoice,
    LedgerTransaction,
    Payment,
    PromoRedemption,
    Referral,
    RefundDebt,
    StaffAuditLog,
    WelcomeClaim,
)
from botapp.tests.admin.conftest import changelist
from botapp.tests.billing.factories import user_fund, user_make

pytestmark = pytest.mark.django_db

READ_ONLY: list[type[Model]] = [
    LedgerTransaction, Account, Hold, Payment, Invoice,
    PromoRedemption, Referral, WelcomeClaim, StaffAuditLog, RefundDebt,
]  # fmt: skip


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_read_only_models_allow_no_add_change_or_delete(model: type[Model], staff: User) -> None:
    request = RequestFactory().get("/")
    request.user = staff
    model_admin = admin.site._registry[model]
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_the_add_page_of_a_read_only_model_is_forbidden(model: type[Model], client_staff: Client) -> None:
    name = str(model._meta.model_name)
    assert client_staff.get(changelist(name)).status_code == 200
    assert client_staff.get(reverse(f"admin:botapp_{name}_add")).status_code == 403


def test_a_ledger_transaction_page_shows_its_entries_and_cannot_be_posted_to(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 40)
    tx = LedgerTransaction.objects.get(user=user)
    url = reverse("admin:botapp_ledgertransaction_change", args=[tx.pk])
    page = client_staff.get(url)
    assert page.status_code == 200
    assert "adjustments" in page.content.decode()  # строка системного счёта в инлайне
    assert client_staff.post(url, {"reason": "edited"}).status_code == 403
    assert (
        client_staff.post(
            reverse("admin:botapp_account_delete", args=[ledger.account_for(user).pk])
        ).status_code
        == 403
    )
    assert LedgerTransaction.objects.get(pk=tx.pk).reason == "test funding"
