"""Вход в панель: пароль и, при STAFF_2FA_REQUIRED, код TOTP; выход."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import reverse_lazy
from django_otp import login as otp_login

from dashboard.forms import TotpLoginForm


class StaffLoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = False

    def get_form_class(self) -> Any:
        # С обязательным 2FA нужен и код TOTP; сессия отмечается подтверждённой (is_verified)
        return TotpLoginForm if settings.STAFF_2FA_REQUIRED else super().get_form_class()

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        device = getattr(form, "otp_device", None)
        if device is not None:
            otp_login(self.request, device)
        return response

    def get_default_redirect_url(self) -> str:
        return str(reverse_lazy("dashboard:overview"))


class StaffLogoutView(auth_views.LogoutView):
    next_page = "dashboard:login"
