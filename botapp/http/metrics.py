"""GET /metrics — экспозиция Prometheus за заголовком `Authorization: Bearer $METRICS_TOKEN`.

Пустой METRICS_TOKEN — 404: эндпоинт выключен и не выдаёт, что он есть (production без
токена не стартует). Нет или неверный токен — 401. Сбор идёт в отдельном потоке, чтобы не
занимать общий поток синхронных представлений ASGI.
"""

from __future__ import annotations

import asyncio
import hmac

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from botapp.ops import metrics


def token_ok(header: str) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, given = header.partition(" ")
    # Сравнение за постоянное время; пустой ожидаемый токен не пускает никого
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


def _render() -> bytes:
    try:
        return metrics.metrics_render()
    finally:
        # Соединения этого потока пула: иначе каждый поток держал бы своё
        connections.close_all()


@never_cache
@require_GET
async def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics — счётчики из Redis и датчики из PostgreSQL/Redis на момент запроса."""
    if not settings.METRICS_TOKEN:
        return HttpResponse(status=404)
    if not token_ok(request.headers.get("Authorization", "")):
        response = HttpResponse(status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = await asyncio.to_thread(_render)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
