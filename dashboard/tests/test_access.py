"""Доступ к панели и админке: только персонал, вход с кодом TOTP (STAFF_2FA_REQUIRED включён в тестах)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


def _staff() -> tuple[User, TOTPDevice]:
    user = User.objects.create_user(
        "anna",
        password="correct horse",
        is_staff=True,  # pragma: allowlist secret
    )  # pragma: allowlist secret
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user, device


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_the_overview_sends_anonymous_visitors_to_the_login() -> None:
    response = Client().get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/")


def test_a_password_alone_is_not_enough_with_2fa() -> None:
    _staff()
    client = Client()
    response = client.post("/dashboard/login/", {"username": "anna", "password": "correct horse"})
    assert response.status_code == 200  # форма снова: нужен код
    assert client.get("/dashboard/").status_code == 302


def test_staff_log_in_with_a_totp_code_and_see_the_overview() -> None:
    _user, device = _staff()
    client = Client()
    response = client.post(
        "/dashboard/login/", {"username": "anna", "password": "correct horse", "otp_token": _code(device)}
    )
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_a_logged_in_but_unverified_staff_member_cannot_open_the_admin() -> None:
    user, _device = _staff()
    client = Client()
    client.force_login(user)
    assert client.get("/admin/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_repeated_wrong_passwords_lock_the_login() -> None:
    _user, device = _staff()
    client = Client()
    for _ in range(5):
        client.post(
            "/dashboard/login/", {"username": "anna", "password": "wrong", "otp_token": "000000"}
        )  # pragma: allowlist secret
    response = client.post(
        "/dashboard/login/", {"username": "anna", "password": "correct horse", "otp_token": _code(device)}
    )
    assert response.status_code == 429
    assert client.get("/dashboard/").status_code == 302


def test_the_staff_totp_command_prints_an_otpauth_url() -> None:
    from io import StringIO

    from django.core.management import call_command

    _staff()
    out = StringIO()
    call_command("staff_totp", "anna", stdout=out)
    assert out.getvalue().startswith("otpauth://totp/")
    assert TOTPDevice.objects.filter(user__username="anna").count() == 2
