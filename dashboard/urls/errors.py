"""URL раздела «Ошибки» панели (подключаются в dashboard/urls/__init__.py)."""

from __future__ import annotations

from django.urls import path

from dashboard.views import errors

urlpatterns = [
    path("", errors.errors_index, name="errors"),
    path("<int:pk>/", errors.errors_detail, name="errors-detail"),
    path("<int:pk>/status/", errors.errors_status, name="errors-status"),
]
