"""Отмена реферальной награды возвратом: забирается выданное, а не нынешняя настройка; старые награды
получают своё пополнение миграцией."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps

from botapp.billing import payments, referrals
from botapp.models import Payment, PaymentMethod, PricingSettings, Referral, TelegramUser
from botapp.tests.billing.factories import balance, package_make, user_make

pytestmark = pytest.mark.django_db


def _paid(user: TelegramUser, charge: str) -> Payment:
    package = package_make(stars=50, tokens=50)
    invoice = payments.invoice_create_stars(user=user, package=package)
    return payments.payment_complete(
        method=PaymentMethod.STARS, external_id=charge, invoice=invoice, user=invoice.user,
        amount=Decimal(50), currency="XTR", raw={},
    ).payment  # fmt: skip


def test_the_reversal_takes_back_what_was_paid_even_after_the_rewards_changed() -> None:
    inviter, friend = user_make(), user_make()
    code = referrals.referral_code_for(user=inviter)
    assert referrals.referral_attach(invitee=friend, code=code) == "attached"
    _paid(friend, "charge-1")
    assert balance(inviter) == (30, 0)
    PricingSettings.objects.filter(pk=1).update(referral_inviter_reward=100, referral_invitee_reward=0)
    outcome = payments.payment_refunded_externally(method=PaymentMethod.STARS, external_id="charge-1")
    assert outcome is not None
    assert outcome.reversal is not None
    assert outcome.reversal.inviter is not None
    assert outcome.reversal.inviter.taken == 30
    assert (balance(inviter), balance(friend)) == ((0, 0), (0, 0))


def test_the_migration_links_old_rewards_to_the_first_credited_payment() -> None:
    inviter, friend = user_make(), user_make()
    referrals.referral_attach(invitee=friend, code=referrals.referral_code_for(user=inviter))
    first = _paid(friend, "charge-1")
    _paid(friend, "charge-2")
    Referral.objects.update(reward_payment=None)
    importlib.import_module("botapp.migrations.0009_referral_reversal").reward_payments_fill(apps, None)
    assert Referral.objects.get().reward_payment_id == first.pk
