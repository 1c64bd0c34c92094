"""Формы панели."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django_otp import match_token


class TotpLoginForm(AuthenticationForm):
    """Пароль + код TOTP из любого подтверждённого устройства сотрудника."""

    otp_token = forms.CharField(
        label="Код TOTP",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.get_user()
        self.otp_device = match_token(user, cleaned.get("otp_token", "")) if user else None
        if self.otp_device is None:
            raise forms.ValidationError("Неверный код TOTP или у сотрудника нет подтверждённого устройства.")
        return cleaned
