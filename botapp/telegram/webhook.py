"""POST /telegram/webhook/ — приём апдейтов (ARCHITECTURE §4 «Update ingest»)."""

from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from botapp.telegram import inbox
from botapp.telegram.application import process_update_data
from botapp.telegram.dbcall import db

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  # pragma: allowlist secret


def _secret_ok(request: HttpRequest) -> bool:
    expected = settings.TG_WEBHOOK_SECRET
    given = request.headers.get(SECRET_HEADER, "")
    # Сравнение за постоянное время; пустой ожидаемый секрет не пускает никого
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _update_type(data: dict[str, object]) -> str:
    return next((key for key in data if key != "update_id"), "")


@csrf_exempt
@require_POST
async def telegram_webhook(request: HttpRequest) -> HttpResponse:
    """Апдейт от Telegram: проверка, дедупликация, обработка на месте, всегда 200 после записи."""
    if not _secret_ok(request):
        return HttpResponse(status=403)
    if request.content_type != "application/json":
        return HttpResponse(status=415)
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "invalid JSON"}, status=400)
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return JsonResponse({"error": "update_id must be an integer"}, status=400)

    # Не записали — 5xx, и Telegram пришлёт апдейт снова
    claimed = await db(inbox.inbox_claim)(update_id=update_id, update_type=_update_type(data))
    if not claimed:
        return HttpResponse(status=200)
    await process_update_data(data)
    await db(inbox.inbox_complete)(update_id=update_id)
    return HttpResponse(status=200)
