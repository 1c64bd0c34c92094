"""Метрики /metrics и доступ персонала."""

from __future__ import annotations

from config import env

METRICS_TOKEN = env.METRICS_TOKEN
STAFF_2FA_REQUIRED = env.STAFF_2FA_REQUIRED

# Вход персонала: TOTP (django-otp) и ограничение неудачных попыток (django-axes)
OTP_TOTP_ISSUER = "NanoBanana"
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 1  # часов
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
LOGIN_URL = "dashboard:login"
# Часовой пояс отчётов панели (сутки в KPI)
DASHBOARD_TIME_ZONE = env.TIME_ZONE
