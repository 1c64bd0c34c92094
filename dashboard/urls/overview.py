"""URL раздела «Обзор» панели."""

from __future__ import annotations

from django.urls import path

from dashboard.views import overview

urlpatterns = [path("", overview.overview, name="overview")]
