"""URL раздела «broadcasts» панели (подключаются в dashboard/urls/__init__.py)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
