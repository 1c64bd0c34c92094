"""Каждая страница админки бота открывается: список, поиск и карточка с данными."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from botapp.billing import ledger
from botapp.models import (
    Payment,
    PaymentMethod,
    PromoCode,
    PromoRedemption,
    Referral,
    TransactionKind,
    WelcomeClaim,
)
from botapp.tests.billing.factories import user_fund, user_make

pytestmark = pytest.mark.django_db


def test_every_botapp_admin_page_renders(client_staff: Client) -> None:
    user, friend = user_make(), user_make()
    user_fund(user, 30)
    ledger.hold(user=user, amount=5, key="job-1")
    payment = Payment.objects.create(
        user=user,
        method=PaymentMethod.STARS,
        external_id="c-1",
        amount=Decimal(50),
        currency="XTR",
        tokens=50,
    )
    ledger.take_back(
        user=user, amount=50, key="refund-1", kind=TransactionKind.PAYMENT_REFUND,
        destination=ledger.SALES_STARS, reference=payment,
    )  # fmt: skip
    promo = PromoCode.objects.create(code="hello", amount=5, max_redemptions=2, redeemed_count=1)
    PromoRedemption.objects.create(promo=promo, user=user)
    Referral.objects.create(inviter=user, invitee=friend)
    WelcomeClaim.objects.create(id_hash="a" * 64)
    models = [model for model in admin.site._registry if model._meta.app_label == "botapp"]
    assert len(models) >= 15
    for model in models:
        name = model._meta.model_name
        listing = client_staff.get(reverse(f"admin:botapp_{name}_changelist"), {"q": "1"}, follow=True)
        assert listing.status_code == 200, name
        obj = model._default_manager.first()
        if obj is not None:
            page = client_staff.get(reverse(f"admin:botapp_{name}_change", args=[obj.pk]))
            assert page.status_code == 200, name
