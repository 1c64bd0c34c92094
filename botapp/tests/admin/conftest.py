"""Админка: клиент персонала (суперпользователь) и помощники для действий списка."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse


@pytest.fixture
def staff(db: Any) -> User:
    return User.objects.create_superuser("anna", "anna@example.invalid", "pw")


@pytest.fixture
def client_staff(staff: User) -> Client:
    return verified_client(staff)


def verified_client(user: User) -> Client:
    """Клиент персонала с сессией, подтверждённой TOTP (STAFF_2FA_REQUIRED включён в тестах)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device, _ = TOTPDevice.objects.get_or_create(user=user, name="test", defaults={"confirmed": True})
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def form_nonce(client: Client, url: str) -> str:
    """Одноразовый nonce формы со страницы, как его отправил бы браузер (первый на странице)."""
    match = re.search(r'name="nonce" value="([0-9a-f]{32})"', client.get(url).content.decode())
    assert match, f"{url}: the form carries a one-time nonce"
    return match.group(1)


def changelist(model: str) -> str:
    return reverse(f"admin:botapp_{model}_changelist")


def run_action(client: Client, model: str, action: str, ids: list[int], **data: Any) -> Any:
    """POST действия со страницы списка, как браузер (с промежуточной формой — без index)."""
    payload = {"action": action, "_selected_action": [str(pk) for pk in ids], **data}
    if "apply" not in data:
        payload["index"] = "0"
    return client.post(changelist(model), payload, follow=True)


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]
