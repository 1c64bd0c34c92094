"""Каталог и настройки цен: «не проверена» видно, проверка и правки пишутся в аудит, одна строка настроек."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from botapp.models import GenerationModel, PricingSettings, StaffAuditLog, TokenPackage
from botapp.tests.admin.conftest import changelist, messages_of, run_action

pytestmark = pytest.mark.django_db


def _model(slug: str = "nb-test") -> GenerationModel:
    return GenerationModel.objects.create(
        slug=slug, kind="image", provider_model_id="gemini-x", name_ru="Тест", name_en="Test",
        aspect_ratios=["1:1"], image_sizes=["1K"], price_unit="image", unit_prices={"1K": "0.067"},
    )  # fmt: skip


def _form_data(obj: Any, **changes: Any) -> dict[str, Any]:
    """Данные формы изменения, как их отправит браузер (JSON-поля — строкой)."""
    import json

    data = {}
    for name, value in model_to_dict(obj).items():
        if value is None or name in ("price_verified_by", "price_verified_at"):
            continue
        data[name] = json.dumps(value) if isinstance(value, dict | list) else value
    return {**data, **changes}


def test_an_unverified_price_is_shown_clearly(client_staff: Client) -> None:
    model = _model()
    page = client_staff.get(changelist("generationmodel"), {"q": model.slug})
    assert "НЕ ПРОВЕРЕНА" in page.content.decode()


def test_marking_prices_verified_records_who_and_when_and_audits(client_staff: Client, staff: User) -> None:
    model = _model()
    page = run_action(client_staff, "generationmodel", "mark_prices_verified", [model.pk])
    assert any("отмечены проверенными: 1" in text for text in messages_of(page))
    model.refresh_from_db()
    assert model.price_verified_at is not None
    assert model.price_verified_by == staff
    audit = StaffAuditLog.objects.get(action="catalog.price_verify")
    assert audit.actor == staff
    assert audit.target_id == str(model.pk)
    assert audit.details["unit_prices"] == {"1K": "0.067"}
    listing = client_staff.get(changelist("generationmodel"), {"q": model.slug}).content.decode()
    assert "НЕ ПРОВЕРЕНА" not in listing
    assert "проверена" in listing


def test_changing_a_price_audits_it_and_makes_it_unverified_again(client_staff: Client, staff: User) -> None:
    model = _model()
    run_action(client_staff, "generationmodel", "mark_prices_verified", [model.pk])
    model.refresh_from_db()
    url = reverse("admin:botapp_generationmodel_change", args=[model.pk])
    response = client_staff.post(url, _form_data(model, unit_prices='{"1K": "0.08"}'))
    assert response.status_code == 302, response.context["adminform"].form.errors
    model.refresh_from_db()
    assert model.unit_prices == {"1K": "0.08"}
    assert model.price_verified_at is None
    audit = StaffAuditLog.objects.get(action="botapp.generationmodel.change")
    assert audit.actor == staff
    assert audit.details == {"changes": {"unit_prices": [{"1K": "0.067"}, {"1K": "0.08"}]}}


def test_pricing_settings_is_a_single_row_that_cannot_be_added_twice_or_deleted(client_staff: Client) -> None:
    assert PricingSettings.objects.filter(pk=1).exists()
    assert client_staff.get(reverse("admin:botapp_pricingsettings_add")).status_code == 403
    assert client_staff.post(reverse("admin:botapp_pricingsettings_add"), {"markup": "3"}).status_code == 403
    delete = client_staff.post(reverse("admin:botapp_pricingsettings_delete", args=[1]), {"post": "yes"})
    assert delete.status_code == 403
    assert PricingSettings.objects.count() == 1
    listing = client_staff.get(changelist("pricingsettings"))
    assert listing.status_code == 302
    assert listing["Location"] == reverse("admin:botapp_pricingsettings_change", args=[1])


def test_pricing_settings_can_be_added_when_missing(client_staff: Client) -> None:
    PricingSettings.objects.all().delete()
    row = PricingSettings()
    response = client_staff.post(reverse("admin:botapp_pricingsettings_add"), _form_data(row, markup="2.5"))
    assert response.status_code == 302
    assert PricingSettings.objects.get().pk == 1
    assert client_staff.get(reverse("admin:botapp_pricingsettings_add")).status_code == 403


def test_a_pricing_change_is_audited_with_the_old_and_new_value(client_staff: Client, staff: User) -> None:
    row = PricingSettings.objects.get(pk=1)
    old_markup = str(row.markup)
    url = reverse("admin:botapp_pricingsettings_change", args=[1])
    response = client_staff.post(url, _form_data(row, markup="2.500"))
    assert response.status_code == 302
    assert str(PricingSettings.objects.get(pk=1).markup) == "2.500"
    audit = StaffAuditLog.objects.get(action="botapp.pricingsettings.change")
    assert audit.actor == staff
    assert audit.details == {"changes": {"markup": [old_markup, "2.500"]}}


def test_saving_without_changes_writes_no_audit_record(client_staff: Client) -> None:
    row = PricingSettings.objects.get(pk=1)
    response = client_staff.post(reverse("admin:botapp_pricingsettings_change", args=[1]), _form_data(row))
    assert response.status_code == 302
    assert not StaffAuditLog.objects.exists()


def test_a_new_package_is_audited_and_packages_cannot_be_deleted(client_staff: Client, staff: User) -> None:
    data = {"title_ru": "Мега", "title_en": "Mega", "stars": "500", "tokens": "600", "bonus_percent": "10",
            "lava_offers": "{}", "lava_prices": "{}", "is_enabled": "on", "order": "9"}  # fmt: skip
    response = client_staff.post(reverse("admin:botapp_tokenpackage_add"), data)
    assert response.status_code == 302
    package = TokenPackage.objects.get(title_en="Mega")
    audit = StaffAuditLog.objects.get(action="botapp.tokenpackage.create")
    assert audit.actor == staff
    assert audit.details["changes"]["stars"] == [None, 500]
    delete = client_staff.post(
        reverse("admin:botapp_tokenpackage_delete", args=[package.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
