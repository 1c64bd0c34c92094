"""Карта URL (ARCHITECTURE §7 «URLs»)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from botapp.http import health
from botapp.http.metrics import metrics_view
from botapp.telegram.webhook import telegram_webhook

urlpatterns = [
    path("api/health/live", health.live, name="health-live"),
    path("api/health", health.deep, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("telegram/webhook/", telegram_webhook, name="telegram-webhook"),
    path("payments/lava/webhook/", include("botapp.http.payments")),  # name="lava-webhook"
    path("media/s/", include("botapp.http.media")),  # name="media-signed"
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
]

if settings.STAFF_2FA_REQUIRED:
    # Админка пускает только персонал, подтвердивший вход кодом TOTP
    from django_otp.admin import OTPAdminSite

    admin.site.__class__ = OTPAdminSite

if settings.TELEGRAM_SANDBOX:
    # Локальный Telegram: эмулятор Bot API и веб-чат (никогда в production)
    urlpatterns.append(path("sandbox/", include("botapp.sandbox.urls")))
