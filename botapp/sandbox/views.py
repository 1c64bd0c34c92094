"""HTTP-вход эмулятора: разбор тела (form, multipart, JSON, query) и ответ в формате Bot API.

Токен — часть URL, поэтому ответы помечены как уже записанные в лог: иначе Django
записал бы путь 4xx-запроса вместе с токеном.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from botapp.sandbox import api, files
from botapp.sandbox.errors import NOT_FOUND, ApiError, bad_request
from botapp.sandbox.limits import TOO_LARGE
from botapp.sandbox.models import SandboxFile
from botapp.sandbox.spec import Upload

logger = logging.getLogger(__name__)

# Тело запроса: файл до 50 МБ и немного на поля формы
MAX_REQUEST_BYTES = files.UPLOAD_MAX + files.MB


def _reply(status: int, payload: dict[str, Any]) -> HttpResponse:
    response = JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})
    response._has_been_logged = True  # type: ignore[attr-defined]  # путь с токеном в лог не пишем
    return response


def _read(request: HttpRequest) -> tuple[dict[str, Any], dict[str, Upload]]:
    raw: dict[str, Any] = dict(request.GET.items())
    uploads: dict[str, Upload] = {}
    if request.method != "POST":
        return raw, uploads
    if request.content_type == "application/json":
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("JSON body must be an object")
        raw.update(body)
        return raw, uploads
    raw.update(request.POST.items())
    for name in request.FILES:
        uploaded = request.FILES.get(name)
        if not isinstance(uploaded, UploadedFile):
            continue
        uploads[name] = Upload(
            part=name,
            filename=uploaded.name or name,
            content_type=uploaded.content_type or "application/octet-stream",
            data=uploaded.read(),
        )
    return raw, uploads


@csrf_exempt
def bot_method(request: HttpRequest, token: str, method: str) -> HttpResponse:
    """POST/GET /sandbox/api/bot<token>/<method>."""
    if not settings.TELEGRAM_SANDBOX:
        return _reply(404, NOT_FOUND.payload())
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_REQUEST_BYTES:
        return _reply(TOO_LARGE.code, TOO_LARGE.payload())
    try:
        raw, uploads = _read(request)
    except RequestDataTooBig:
        return _reply(TOO_LARGE.code, TOO_LARGE.payload())
    except (ValueError, UnicodeDecodeError):
        error = bad_request("can't parse request body")
        return _reply(error.code, error.payload())
    try:
        received_at = getattr(request, "scope", {}).get("nb_received_at")
        status, payload = api.handle(
            token=unquote(token), method_name=method, raw=raw, uploads=uploads, received_at=received_at
        )
    except Exception:
        logger.exception("sandbox Bot API: %s failed", method)
        return _reply(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
    return _reply(status, payload)


def file_download(request: HttpRequest, token: str, file_path: str) -> HttpResponse:
    """GET /sandbox/api/file/bot<token>/<file_path> (токен может прийти с %3A вместо «:»)."""
    if not settings.TELEGRAM_SANDBOX:
        return _reply(404, NOT_FOUND.payload())
    try:
        api.authorize(unquote(token))
    except ApiError as exc:
        return _reply(exc.code, exc.payload())
    stored = SandboxFile.objects.filter(file_path=unquote(file_path)).first()
    if stored is None:
        return _reply(404, NOT_FOUND.payload())
    if stored.size > files.DOWNLOAD_MAX:
        error = bad_request("file is too big")
        return _reply(error.code, error.payload())
    response = HttpResponse(
        bytes(stored.content), content_type=stored.mime_type or "application/octet-stream"
    )
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def api_not_found(request: HttpRequest) -> HttpResponse:
    """Прочие пути под /sandbox/api/ — как у Telegram: JSON 404."""
    return _reply(404, NOT_FOUND.payload())
