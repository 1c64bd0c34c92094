"""POST /payments/lava/webhook/ — уведомления lava.top об оплате (Документация/payments-lava.md).

Коды: 403 — приём не настроен; 401 — чужие учётные данные; 400 — не JSON; 503 — lava не ответила
на перепроверку (lava повторит вебхук); 200 — всё остальное, в том числе то, что мы не поняли.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from botapp.billing import lava
from botapp.providers.base import ProviderError, ProviderTransientError
from botapp.providers.payments.lava import API_KEY_HEADER
from botapp.telegram.dbcall import db
from botapp.telegram.handlers.lava import lava_receipt_send

logger = logging.getLogger(__name__)


def _same(given: str, expected: str) -> bool:
    # Постоянное время; сравниваем байты, чтобы не-ASCII в заголовке не давал TypeError
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _auth_refusal(request: HttpRequest) -> HttpResponse | None:
    """Ответ-отказ или None, если вебхук от lava. Ключ (если задан) важнее basic auth."""
    if settings.LAVA_WEBHOOK_API_KEY:
        if _same(request.headers.get(API_KEY_HEADER, ""), settings.LAVA_WEBHOOK_API_KEY):
            return None
        return HttpResponse(status=401)
    if settings.LAVA_WEBHOOK_USER and settings.LAVA_WEBHOOK_PASSWORD:
        given = _basic_credentials(request) or ("", "")
        # Оба сравнения всегда: время ответа не выдаёт, какая половина неверна
        user_ok = _same(given[0], settings.LAVA_WEBHOOK_USER)
        password_ok = _same(given[1], settings.LAVA_WEBHOOK_PASSWORD)
        if user_ok and password_ok:
            return None
        response = HttpResponse(status=401)
        response["WWW-Authenticate"] = 'Basic realm="lava webhook"'
        return response
    # Не настроено — не пускаем никого, даже при LAVA_ENABLED
    return HttpResponse(status=403)


@csrf_exempt
@require_POST
async def lava_webhook(request: HttpRequest) -> HttpResponse:
    """Вебхук lava.top: аутентификация, перепроверка контракта у lava, зачисление ровно один раз."""
    refusal = _auth_refusal(request)
    if refusal is not None:
        return refusal
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "invalid JSON"}, status=400)
    if not isinstance(payload, dict):
        return HttpResponse(status=200)
    try:
        outcome = await db(lava.lava_webhook_handle)(payload=payload)
    except ProviderError as exc:
        # 5xx: lava повторит вебхук (до 19 раз за ~5 ч); постоянная ошибка — скорее наш ключ API
        level = logging.WARNING if isinstance(exc, ProviderTransientError) else logging.ERROR
        logger.log(level, "lava webhook deferred, lava API failed: %s", exc)
        return HttpResponse(status=503)
    logger.info("lava webhook: %s", outcome.action)
    if outcome.settled and outcome.user is not None:
        await lava_receipt_send(
            user=outcome.user, tokens=outcome.tokens, available=outcome.available, referral=outcome.referral
        )
    return HttpResponse(status=200)


# Подключается одной строкой в config/urls.py: path("payments/lava/webhook/", include(...))
urlpatterns = [path("", lava_webhook, name="lava-webhook")]
