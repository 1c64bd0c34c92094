"""Карта URL (ARCHITECTURE §7 «URLs»)."""

from django.contrib import admin
from django.urls import path

from botapp.http import health

urlpatterns = [
    path("api/health/live", health.live, name="health-live"),
    path("api/health", health.deep, name="health"),
    path("admin/", admin.site.urls),
]
