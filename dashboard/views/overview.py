"""Обзор: KPI и графики (страницу наполняет раздел «Обзор»)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.access import staff_required


@staff_required
def overview(request: HttpRequest) -> HttpResponse:
    """Главная панели."""
    return render(request, "dashboard/overview.html", {})
