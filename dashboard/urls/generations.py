"""URL раздела «Генерации»: список с фильтрами и действия над заданием (POST)."""

from __future__ import annotations

from django.urls import path

from dashboard.views import generations

urlpatterns = [
    path("", generations.generation_list, name="generations"),
    path("<int:job_id>/<slug:action>/", generations.generation_action, name="generation_action"),
]
