"""Веб-чат песочницы (/sandbox/): поддельный пользователь пишет боту, страница опрашивает состояние.

Представления тонкие: разбор ввода → сервис песочницы → доставка апдейтов на вебхук бота
(тот же сервер) → JSON. Доступны только при TELEGRAM_SANDBOX.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from botapp.sandbox import files, services
from botapp.sandbox.errors import ApiError
from botapp.sandbox.models import SandboxQuery

View = Callable[..., HttpResponse]


def sandbox_only(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.TELEGRAM_SANDBOX:
            raise Http404
        try:
            return view(request, *args, **kwargs)
        except ObjectDoesNotExist:
            return JsonResponse({"error": "not found"}, status=404)
        except (ValueError, KeyError) as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        except ApiError as exc:
            # Ту же ошибку дал бы Telegram клиенту (например, «фото» не картинка)
            return JsonResponse({"error": exc.description}, status=400)

    return wrapper


def _json_body(request: HttpRequest) -> dict[str, Any]:
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("JSON object expected")
    return data


def _deliver(request: HttpRequest) -> list[int]:
    # Вебхук бота — на этом же сервере (бот в песочнице сам setWebhook не зовёт)
    return services.sandbox_updates_deliver_pending(base_url=f"{request.scheme}://{request.get_host()}")


@require_GET
@sandbox_only
def chat_page(request: HttpRequest) -> HttpResponse:
    return render(request, "sandbox/chat.html")


@sandbox_only
def chat_users(request: HttpRequest) -> HttpResponse:
    """GET — поддельные пользователи; POST {first_name, username, language_code} — новый."""
    if request.method == "POST":
        data = _json_body(request)
        user = services.sandbox_user_get_or_create(
            first_name=str(data.get("first_name") or "Тестер"),
            username=str(data.get("username") or ""),
            language_code=str(data.get("language_code") or "ru"),
        )
        return JsonResponse({"id": user.chat_id}, status=201)
    users = [
        {
            "id": u.chat_id,
            "first_name": u.first_name,
            "username": u.username,
            "language_code": u.language_code,
        }
        for u in services.sandbox_users()
    ]
    return JsonResponse({"users": users})


@require_GET
@sandbox_only
def chat_state(request: HttpRequest, chat_id: int) -> HttpResponse:
    return JsonResponse(
        services.sandbox_chat_state(chat_id=chat_id), json_dumps_params={"ensure_ascii": False}
    )


@require_POST
@sandbox_only
def chat_send(request: HttpRequest, chat_id: int) -> HttpResponse:
    """Текст/команда, фото (одно или альбом) или файлы как документы; затем доставка боту."""
    text = request.POST.get("text", "").strip()
    uploads = [(u.name or "file", u.content_type or "", u.read()) for u in request.FILES.getlist("files")]
    # Картинки уходят фото (альбомом), остальное — документами, как в клиенте Telegram
    as_document = request.POST.get("as_document") == "1"
    photos = [data for _, _, data in uploads if not as_document and files.image_mime(data)]
    documents = [item for item in uploads if as_document or not files.image_mime(item[2])]
    if photos:
        services.sandbox_user_send_photos(chat_id=chat_id, photos=photos, caption=text)
    for index, (name, mime, data) in enumerate(documents):
        caption = text if index == 0 and not photos else ""
        services.sandbox_user_send_document(
            chat_id=chat_id, content=data, file_name=name, mime_type=mime, caption=caption
        )
    if not uploads:
        services.sandbox_user_send_text(chat_id=chat_id, text=text)
    return JsonResponse({"statuses": _deliver(request)})


@require_POST
@sandbox_only
def chat_press(request: HttpRequest, chat_id: int) -> HttpResponse:
    """Нажатие inline-кнопки; в ответе — answerCallbackQuery бота (текст всплывашки)."""
    data = _json_body(request)
    update = services.sandbox_user_press_button(
        chat_id=chat_id, message_id=int(data["message_id"]), callback_data=str(data["callback_data"])
    )
    statuses = _deliver(request)
    query = SandboxQuery.objects.get(query_id=update["callback_query"]["id"])
    return JsonResponse({"statuses": statuses, "answer": query.answer})


@require_POST
@sandbox_only
def chat_pay(request: HttpRequest, chat_id: int) -> HttpResponse:
    """«Оплатить ⭐»: pre_checkout_query → ответ бота → successful_payment (если ok)."""
    data = _json_body(request)
    update = services.sandbox_user_pay_invoice(chat_id=chat_id, message_id=int(data["message_id"]))
    statuses = _deliver(request)
    query = SandboxQuery.objects.get(query_id=update["pre_checkout_query"]["id"])
    return JsonResponse({"statuses": statuses, "answer": query.answer})


@require_POST
@sandbox_only
def chat_block(request: HttpRequest, chat_id: int) -> HttpResponse:
    """Заблокировать бота ({"blocked": true}) или разблокировать: my_chat_member на вебхук бота."""
    blocked = _json_body(request).get("blocked")
    if not isinstance(blocked, bool):
        raise ValueError("blocked must be true or false")
    services.sandbox_user_block_bot(chat_id=chat_id, blocked=blocked)
    return JsonResponse({"statuses": _deliver(request), "blocked_bot": blocked})


@require_GET
@sandbox_only
def chat_file(request: HttpRequest, file_id: str) -> HttpResponse:
    content, mime, name = services.sandbox_chat_file(file_id=file_id)
    response = HttpResponse(content, content_type=mime)
    if name and not mime.startswith(("image/", "video/")):
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
