"""Проверки здоровья: /api/health/live (процесс жив) и /api/health (глубокая)."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from botapp.ops import health


@never_cache
@require_GET
async def live(request: HttpRequest) -> JsonResponse:
    """GET /api/health/live — без зависимостей: healthcheck контейнера."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
async def deep(request: HttpRequest) -> JsonResponse:
    """GET /api/health — 503 при `down`, 200 при `ok`/`degraded`."""
    # Свежий отчёт из кэша — без прыжка в поток; иначе проверки идут в потоках с бюджетом
    report = health.health_cached()
    if report is None:
        report = await asyncio.to_thread(health.health_report)
    return JsonResponse(report, status=503 if report["status"] == health.DOWN else 200)
