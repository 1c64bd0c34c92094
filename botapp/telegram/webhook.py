"""POST /telegram/webhook/ — приём апдейтов (ARCHITECTURE §4 «Update ingest»).

Горячий путь — чистое ASGI-приложение `webhook_app`: config/asgi.py отдаёт ему этот путь
до Django. ASGIHandler на каждый запрос заводит поток для сигналов request_started и
request_finished (два прыжка в него), пишет тело во временный файл и держит задачу,
слушающую разрыв, — вебхуку ничего из этого не нужно. Представление `telegram_webhook`
(URLconf: WSGI, тестовый клиент) делает то же через общие `check_request` и `handle_update`.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from telegram import Update

from botapp.http.asgi import Receive, Scope, Send
from botapp.ops import metrics
from botapp.telegram import inbox
from botapp.telegram.application import get_application, process_update
from botapp.telegram.dbcall import db
from botapp.telegram.handlers.prepare import ingest_fields
from botapp.telegram.sender import OutgoingLog, outgoing_log

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  # pragma: allowlist secret
_SECRET_HEADER_RAW = SECRET_HEADER.lower().encode("latin-1")


def _secret_ok(given: str) -> bool:
    expected = settings.TG_WEBHOOK_SECRET
    # Сравнение за постоянное время; пустой ожидаемый секрет не пускает никого
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _update_type(data: dict[str, object]) -> str:
    return next((key for key in data if key != "update_id"), "")


def check_request(secret: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Проверки до записи: (200, апдейт) или (код ошибки, тело ответа)."""
    if not _secret_ok(secret):
        return 403, {}
    if content_type != "application/json":
        return 415, {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 400, {"error": "invalid JSON"}
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return 400, {"error": "update_id must be an integer"}
    return 200, data


@metrics.webhook_timed
async def handle_update(data: dict[str, Any]) -> None:
    """Захват, обработка на месте, отметка done. Исключение — только если не удалось записать."""
    update_id: int = data["update_id"]
    application = await get_application()
    try:
        update: Update | None = Update.de_json(data, application.bot)
    except Exception:
        # Битый апдейт не повторяем бесконечно: захват, отметка done, 200
        logger.exception("update %s could not be parsed", update_id)
        update = None
    user, incoming = ingest_fields(update) if update is not None else (None, None)
    # Захват, пользователь и входящее — одним оператором; не записали — 5xx, Telegram повторит
    claim = await db(inbox.inbox_ingest)(
        update_id=update_id, update_type=_update_type(data), user=user, incoming=incoming
    )
    if not claim.claimed:
        return
    outgoing = OutgoingLog()
    token = outgoing_log.set(outgoing)
    try:
        if update is not None:
            await process_update(
                update, claim.user, claim.conversation, conversation_known=claim.conversation_known
            )
    finally:
        outgoing_log.reset(token)
    # Исходящие обработчика — в журнал той же транзакцией, что и отметка done
    await inbox.inbox_complete_async(update_id, outgoing.close())


@csrf_exempt
@require_POST
async def telegram_webhook(request: HttpRequest) -> HttpResponse:
    """Апдейт от Telegram через Django (тот же порядок проверок, что и у webhook_app)."""
    status, payload = check_request(
        request.headers.get(SECRET_HEADER, ""), request.content_type or "", request.body
    )
    if status == 200:
        await handle_update(payload)
    if payload and status != 200:
        return JsonResponse(payload, status=status)
    return HttpResponse(status=status)


async def _respond(send: Send, status: int, payload: dict[str, Any] | None = None) -> None:
    body = json.dumps(payload).encode() if payload else b""
    headers = [(b"content-length", str(len(body)).encode())]
    if payload:
        headers.append((b"content-type", b"application/json"))
    if status == 405:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def webhook_app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI-приложение вебхука; лимит тела (413) — в BodySizeLimitMiddleware снаружи."""
    if scope["method"] != "POST":
        await _respond(send, 405)
        return
    secret, content_type = "", ""
    for name, value in scope["headers"]:
        if name == _SECRET_HEADER_RAW:
            secret = value.decode("latin-1")
        elif name == b"content-type":
            content_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    status, payload = check_request(secret, content_type, b"".join(chunks))
    if status != 200:
        await _respond(send, status, payload)
        return
    try:
        await handle_update(payload)
    except Exception:
        logger.exception("webhook update %s not persisted", payload["update_id"])
        await _respond(send, 500)
        return
    await _respond(send, 200)
