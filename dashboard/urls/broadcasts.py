"""URL раздела «Рассылки» панели (подключаются в dashboard/urls/__init__.py)."""

from __future__ import annotations

from django.urls import path

from dashboard.views import broadcasts

urlpatterns = [
    path("", broadcasts.broadcast_list, name="broadcasts"),
    path("new/", broadcasts.broadcast_new, name="broadcast_new"),
    path("audience/", broadcasts.broadcast_audience_count, name="broadcast_audience"),
    path("<int:broadcast_id>/", broadcasts.broadcast_detail, name="broadcast"),
    path("<int:broadcast_id>/progress/", broadcasts.broadcast_progress_json, name="broadcast_progress"),
    path("<int:broadcast_id>/preview/", broadcasts.broadcast_preview, name="broadcast_preview"),
    path("<int:broadcast_id>/<slug:action>/", broadcasts.broadcast_action, name="broadcast_action"),
]
