"""Промокоды в админке: код в нижнем регистре, алфавит диплинков, погашено/лимит, аудит."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from botapp.models import PromoCode, StaffAuditLog
from botapp.tests.admin.conftest import changelist

pytestmark = pytest.mark.django_db


def _add(client: Client, code: str, **fields: Any) -> Any:
    data = {"code": code, "amount": "25", "max_redemptions": "5", "is_active": "on", **fields}
    return client.post(reverse("admin:botapp_promocode_add"), data)


def test_a_promo_code_is_stored_in_lower_case_and_audited(client_staff: Client, staff: User) -> None:
    response = _add(client_staff, "  Summer_2026-X ")
    assert response.status_code == 302
    promo = PromoCode.objects.get()
    assert promo.code == "summer_2026-x"
    audit = StaffAuditLog.objects.get(action="botapp.promocode.create")
    assert audit.actor == staff
    assert audit.details["changes"]["amount"] == [None, 25]


@pytest.mark.parametrize("code", ["про100", "has space", "a+b", "a.b"])
def test_a_code_outside_the_deep_link_alphabet_is_refused(client_staff: Client, code: str) -> None:
    response = _add(client_staff, code)
    assert response.status_code == 200
    assert "Только латиница" in response.content.decode()
    assert not PromoCode.objects.exists()


def test_codes_differing_only_in_case_are_the_same_code(client_staff: Client) -> None:
    _add(client_staff, "bonus")
    response = _add(client_staff, "BONUS")
    assert response.status_code == 200
    assert PromoCode.objects.count() == 1


def test_the_list_shows_redeemed_over_max(client_staff: Client) -> None:
    PromoCode.objects.create(code="spring", amount=10, max_redemptions=7, redeemed_count=3)
    page = client_staff.get(changelist("promocode"))
    assert "3 / 7" in page.content.decode()


def test_the_limit_cannot_drop_below_what_is_already_redeemed(client_staff: Client) -> None:
    promo = PromoCode.objects.create(code="spring", amount=10, max_redemptions=7, redeemed_count=3)
    response = client_staff.post(
        reverse("admin:botapp_promocode_change", args=[promo.pk]),
        {"code": "spring", "amount": "10", "max_redemptions": "2", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "Уже погашен 3 раз" in response.content.decode()
    assert PromoCode.objects.get().max_redemptions == 7
    assert not StaffAuditLog.objects.exists()


def test_saving_a_promo_code_does_not_overwrite_redemptions_made_meanwhile(staff: User) -> None:
    from botapp.billing.catalog_admin import staff_save

    promo = PromoCode.objects.create(code="race", amount=10, max_redemptions=7, redeemed_count=3)
    PromoCode.objects.filter(pk=promo.pk).update(redeemed_count=4)  # погашение, пока форма открыта
    promo.amount = 15
    changes = staff_save(obj=promo, actor=staff)
    assert changes == {"amount": [10, 15]}
    fresh = PromoCode.objects.get(pk=promo.pk)
    assert (fresh.amount, fresh.redeemed_count) == (15, 4)
