"""Ошибки в админке: группы со статусом, последние события без секретов."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from botapp.models import ErrorEvent, ErrorGroup
from botapp.ops.errors import error_record
from botapp.tests.admin.conftest import changelist

pytestmark = pytest.mark.django_db


def test_a_group_page_shows_its_latest_events_read_only(client_staff: Client) -> None:
    try:
        raise RuntimeError("boom in handler")
    except RuntimeError as exc:
        group = error_record(source="handler", exc=exc, context={"update_id": 77})
    ErrorEvent.objects.create(group=group, stack="old", context={"note": "key=AIza" + "x" * 35})
    page = client_staff.get(reverse("admin:botapp_errorgroup_change", args=[group.pk]))
    html = page.content.decode()
    assert "boom in handler" in html
    assert "update_id" in html
    assert "AIza" not in html
    assert not page.context["inline_admin_formsets"][0].has_add_permission


def test_the_status_is_editable_from_the_list(client_staff: Client) -> None:
    group = ErrorGroup.objects.create(fingerprint="f" * 32, title="Oops", source="task", count=3)
    page = client_staff.get(changelist("errorgroup"))
    assert "3" in page.content.decode()
    data = {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(group.pk),
        "form-0-status": "resolved", "_save": "Save",
    }  # fmt: skip
    response = client_staff.post(changelist("errorgroup"), data)
    assert response.status_code == 302
    assert ErrorGroup.objects.get().status == ErrorGroup.Status.RESOLVED
