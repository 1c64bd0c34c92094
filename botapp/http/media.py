"""GET /media/s/<token> — локальные медиа по подписанной ссылке (встроенная замена Supabase)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO

from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.urls import path
from django.views.decorators.http import require_safe

from botapp.providers import storage

_CHUNK = 256 * 1024


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    # Под ASGI синхронный итератор файла Django прочитал бы в память целиком (с Warning)
    while chunk := await asyncio.to_thread(file.read, _CHUNK):
        yield chunk


@require_safe
async def media_signed(request: HttpRequest, token: str) -> HttpResponseBase:
    """GET /media/s/<token>: 403 подделка, 410 срок истёк, 404 нет файла, иначе файл."""
    try:
        media = await asyncio.to_thread(storage.open_signed_media, token)
    except storage.SignedMediaInvalid:
        return HttpResponseForbidden()
    except storage.SignedMediaExpired:
        return HttpResponse(status=410)
    except storage.StorageNotFoundError:
        raise Http404 from None
    response = FileResponse(media.file, content_type=media.content_type)
    response["Cache-Control"] = f"private, max-age={media.max_age}"
    if isinstance(request, ASGIRequest):
        # Заголовки (длина, имя) уже выставлены по файлу; тело — асинхронными кусками
        response.streaming_content = _chunks(media.file)
    return response


# Подключается одной строкой в config/urls.py: path("media/s/", include("botapp.http.media"))
urlpatterns = [path("<str:token>", media_signed, name="media-signed")]
