"""Публичный Python-API песочницы для тестов и веб-чата.

Сторона пользователя: действия (текст, фото, кнопка, оплата) создают сообщения и
апдейты; доставку апдейтов на вебхук бота делает sandbox_update_deliver.
Сторона теста: журнал вызовов, заказ сбоев, сброс состояния.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from botapp.sandbox import files, ratelimit, spec
from botapp.sandbox.entities import command_entities
from botapp.sandbox.methods import input_file
from botapp.sandbox.models import (
    SandboxCall,
    SandboxChat,
    SandboxFailure,
    SandboxFile,
    SandboxMessage,
    SandboxQuery,
    SandboxSetting,
    SandboxStarPayment,
    SandboxUpdate,
    SandboxWebhook,
)
from botapp.sandbox.spec import Upload
from botapp.sandbox.state import (
    BotIdentity,
    chat_dict,
    chat_get_or_create,
    default_bot,
    message_create,
    message_dict,
    user_dict,
)

WEBHOOK_PATH = "/telegram/webhook/"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 — имя заголовка, не секрет  # pragma: allowlist secret
DELIVERY_TIMEOUT_S = 60.0  # столько Telegram ждёт ответа вебхука


class Failure(StrEnum):
    """Готовые сбои Telegram для sandbox_inject_failure."""

    FLOOD = "flood"  # 429 + retry_after → RetryAfter
    BLOCKED = "blocked"  # 403 → Forbidden
    CHAT_NOT_FOUND = "chat_not_found"  # 400 → BadRequest
    MIGRATED = "migrated"  # 400 + migrate_to_chat_id → ChatMigrated
    SERVER_ERROR = "server_error"  # 502 → NetworkError


# --- тестам: сброс, журнал, сбои ---


def sandbox_reset() -> None:
    """Забыть всё состояние эмулятора: чаты, сообщения, файлы, журнал, сбои, лимиты."""
    with transaction.atomic():
        for model in (
            SandboxQuery, SandboxMessage, SandboxFile, SandboxChat, SandboxCall, SandboxFailure,
            SandboxWebhook, SandboxSetting, SandboxUpdate, SandboxStarPayment,
        ):  # fmt: skip
            model.objects.all().delete()
    ratelimit.reset()


def sandbox_calls(*, method: str | None = None, chat_id: int | None = None) -> list[SandboxCall]:
    """Вызовы Bot API по порядку; params — после проверки, загрузки — {"upload", "size"},
    части multipart по ссылкам attach:// — в params["_attachments"]."""
    calls = SandboxCall.objects.all()
    if method is not None:
        calls = calls.filter(method=spec.canonical_method(method) or method)
    if chat_id is not None:
        calls = calls.filter(chat_id=chat_id)
    return list(calls.order_by("id"))


def sandbox_inject_failure(
    *,
    method: str,
    failure: Failure | str = Failure.FLOOD,
    chat_id: int | None = None,
    times: int = 1,
    retry_after: int = 3,
    migrate_to_chat_id: int | None = None,
    error_code: int | None = None,
    description: str | None = None,
) -> SandboxFailure:
    """Следующие `times` вызовов `method` (в `chat_id`, если задан) получат ошибку.

    error_code + description задают произвольную ошибку вместо готовой `failure`.
    Хранится в БД: действует на эмулятор в любом процессе.
    """
    canonical = spec.canonical_method(method)
    if canonical is None:
        raise ValueError(f"unknown Bot API method: {method}")
    parameters: dict[str, Any] = {}
    if error_code is not None:
        code, text = error_code, description or "Bad Request: injected failure"
        if retry_after and error_code == 429:
            parameters["retry_after"] = retry_after
    else:
        kind = Failure(failure)
        if kind is Failure.FLOOD:
            code, text = 429, f"Too Many Requests: retry after {retry_after}"
            parameters["retry_after"] = retry_after
        elif kind is Failure.BLOCKED:
            code, text = 403, "Forbidden: bot was blocked by the user"
        elif kind is Failure.CHAT_NOT_FOUND:
            code, text = 400, "Bad Request: chat not found"
        elif kind is Failure.MIGRATED:
            code, text = 400, "Bad Request: group chat was upgraded to a supergroup chat"
            parameters["migrate_to_chat_id"] = migrate_to_chat_id or -1000000000000 - abs(chat_id or 1)
        else:
            code, text = 502, "Bad Gateway"
    return SandboxFailure.objects.create(
        method=canonical,
        chat_id=chat_id,
        remaining=times,
        error_code=code,
        description=text,
        parameters=parameters,
    )


def sandbox_failures_clear() -> None:
    SandboxFailure.objects.all().delete()


# --- чтение состояния ---


def sandbox_messages(
    *, chat_id: int, direction: str | None = None, include_deleted: bool = False
) -> list[SandboxMessage]:
    messages = SandboxMessage.objects.filter(chat__chat_id=chat_id).select_related("chat")
    if direction is not None:
        messages = messages.filter(direction=direction)
    if not include_deleted:
        messages = messages.filter(deleted=False)
    return list(messages.order_by("message_id"))


def sandbox_message_payload(*, message: SandboxMessage) -> dict[str, Any]:
    """Сообщение в виде объекта Message Bot API (как его видит бот)."""
    return message_dict(message, bot=default_bot())


def sandbox_file_content(*, file_id: str) -> bytes:
    return bytes(SandboxFile.objects.values_list("content", flat=True).get(file_id=file_id))


def sandbox_commands(*, language_code: str = "", scope: dict[str, Any] | None = None) -> list[dict[str, str]]:
    from botapp.sandbox.methods import _scope_key

    stored = SandboxSetting.objects.filter(
        key=_scope_key(
            {"language_code": language_code, "scope": scope} if scope else {"language_code": language_code}
        )
    ).first()
    return list(stored.value or []) if stored else []


# --- пользователи и их действия ---


def sandbox_user_get_or_create(
    *,
    user_id: int | None = None,
    first_name: str = "Тестер",
    last_name: str = "",
    username: str = "",
    language_code: str = "ru",
) -> SandboxChat:
    """Поддельный пользователь = его личный чат с ботом (id чата равен id пользователя)."""
    if user_id is None:
        user_id = 7_000_000_000 + secrets.randbelow(900_000_000)
    if user_id <= 0:
        raise ValueError("user_id must be positive")
    chat = chat_get_or_create(
        user_id,
        first_name=first_name[:64],
        last_name=last_name[:64],
        username=username[:64],
        language_code=language_code[:16],
    )
    return chat


def sandbox_users() -> list[SandboxChat]:
    return list(SandboxChat.objects.filter(type=SandboxChat.Type.PRIVATE).order_by("-created_at"))


def sandbox_user_files(*, chat_id: int) -> list[SandboxFile]:
    """Файлы, которые пользователь отправил боту (их бот скачивает через getFile)."""
    return list(
        SandboxFile.objects.defer("content")
        .filter(origin="user", messages__chat__chat_id=chat_id)
        .distinct()
        .order_by("id")
    )


def _chat(chat_id: int) -> SandboxChat:
    chat = SandboxChat.objects.filter(chat_id=chat_id).first()
    return _writable(chat or sandbox_user_get_or_create(user_id=chat_id))


def _writable(chat: SandboxChat) -> SandboxChat:
    """Заблокировавший бота писать ему не может — клиент Telegram сначала предлагает разблокировать."""
    if chat.blocked_bot:
        raise ValueError("the user has blocked the bot: unblock it first")
    return chat


def _queue(payload: dict[str, Any]) -> dict[str, Any]:
    update = SandboxUpdate.objects.create(payload=payload)
    return {"update_id": update.pk, **payload}


def _user_message_update(message: SandboxMessage) -> dict[str, Any]:
    return _queue({"message": message_dict(message, bot=default_bot())})


@transaction.atomic
def sandbox_user_send_text(
    *, chat_id: int, text: str, reply_to_message_id: int | None = None
) -> dict[str, Any]:
    """Пользователь пишет текст или команду (или жмёт кнопку reply-клавиатуры) → апдейт message."""
    if not text:
        raise ValueError("text must not be empty")
    chat = _chat(chat_id)
    message = message_create(
        chat=chat,
        direction="user",
        kind="text",
        text=text,
        entities=command_entities(text),
        reply_to_message_id=reply_to_message_id,
    )
    return _user_message_update(message)


@transaction.atomic
def sandbox_user_send_photos(
    *, chat_id: int, photos: list[bytes], caption: str = "", reply_to_message_id: int | None = None
) -> list[dict[str, Any]]:
    """Одно фото или альбом (общий media_group_id, подпись — у первого) → апдейт на каждое фото.

    reply_to_message_id — альбом ответом на сообщение: Telegram ставит ответ в каждое фото альбома.
    """
    if not 1 <= len(photos) <= 10:
        raise ValueError("1-10 photos")
    chat = _chat(chat_id)
    group_id = str(secrets.randbelow(10**17) + 10**17) if len(photos) > 1 else ""
    updates = []
    for index, data in enumerate(photos):
        stored = input_file(Upload("photo", "photo.jpg", "image/jpeg", data), "photo", origin="user")
        message = message_create(
            chat=chat,
            direction="user",
            kind="photo",
            caption=caption if index == 0 else "",
            extra={"photo": files.media_object(stored, "photo")},
            media_group_id=group_id,
            reply_to_message_id=reply_to_message_id,
        )
        message.files.add(stored)
        updates.append(_user_message_update(message))
    return updates


@transaction.atomic
def sandbox_user_send_document(
    *, chat_id: int, content: bytes, file_name: str, mime_type: str = "", caption: str = ""
) -> dict[str, Any]:
    """Файл «без сжатия» (например, PNG как документ) → апдейт message с document."""
    chat = _chat(chat_id)
    stored = input_file(
        Upload("document", file_name, mime_type or files.guess_mime(file_name), content),
        "document",
        origin="user",
    )
    message = message_create(
        chat=chat,
        direction="user",
        kind="document",
        caption=caption,
        extra={"document": files.media_object(stored, "document")},
    )
    message.files.add(stored)
    return _user_message_update(message)


def _bot_message(chat_id: int, message_id: int) -> SandboxMessage:
    message = (
        SandboxMessage.objects.select_related("chat")
        .filter(chat__chat_id=chat_id, message_id=message_id, direction="bot", deleted=False)
        .first()
    )
    if message is None:
        raise ValueError(f"no bot message {message_id} in chat {chat_id}")
    _writable(message.chat)
    return message


@transaction.atomic
def sandbox_user_block_bot(*, chat_id: int, blocked: bool) -> dict[str, Any] | None:
    """Пользователь блокирует бота (или разблокирует) → апдейт my_chat_member, как у Telegram.

    Пока бот заблокирован, вызовы в этот чат получают 403 «bot was blocked by the user».
    Повтор того же действия ничего не шлёт (None): статус не изменился.
    """
    private = SandboxChat.objects.select_for_update().filter(type=SandboxChat.Type.PRIVATE)
    chat = private.filter(chat_id=chat_id).first()
    if chat is None:
        raise ValueError(f"no private chat {chat_id}")
    if chat.blocked_bot == blocked:
        return None
    SandboxChat.objects.filter(pk=chat.pk).update(blocked_bot=blocked)
    bot = default_bot()
    member = {"status": "member", "user": bot.user()}
    kicked = {"status": "kicked", "user": bot.user(), "until_date": 0}
    return _queue(
        {
            "my_chat_member": {
                "chat": chat_dict(chat),
                "from": user_dict(chat),
                "date": int(timezone.now().timestamp()),
                "old_chat_member": member if blocked else kicked,
                "new_chat_member": kicked if blocked else member,
            }
        }
    )


@transaction.atomic
def sandbox_user_press_button(*, chat_id: int, message_id: int, callback_data: str) -> dict[str, Any]:
    """Нажатие inline-кнопки → апдейт callback_query (ответ бота — answerCallbackQuery)."""
    message = _bot_message(chat_id, message_id)
    buttons = [b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]
    if not any(b.get("callback_data") == callback_data for b in buttons):
        raise ValueError(f"message {message_id} has no button with callback_data {callback_data!r}")
    query = SandboxQuery.objects.create(
        query_id=str(secrets.randbelow(10**18) + 10**18),
        kind=SandboxQuery.Kind.CALLBACK,
        chat=message.chat,
        message_id=message_id,
        data={"callback_data": callback_data},
    )
    bot = default_bot()
    return _queue(
        {
            "callback_query": {
                "id": query.query_id,
                "from": user_dict(message.chat),
                "message": message_dict(message, bot=bot),
                "chat_instance": str(abs(hash((bot.id, chat_id)))),
                "data": callback_data,
            }
        }
    )


@transaction.atomic
def sandbox_user_pay_invoice(*, chat_id: int, message_id: int) -> dict[str, Any]:
    """«Оплатить ⭐» у счёта → апдейт pre_checkout_query; ответ ok=true порождает successful_payment."""
    message = _bot_message(chat_id, message_id)
    if message.kind != "invoice":
        raise ValueError(f"message {message_id} is not an invoice")
    invoice = message.extra["invoice"]
    payload = message.extra.get("sandbox", {}).get("payload", "")
    query = SandboxQuery.objects.create(
        query_id=str(secrets.randbelow(10**18) + 10**18),
        kind=SandboxQuery.Kind.PRE_CHECKOUT,
        chat=message.chat,
        message_id=message_id,
        data={
            "currency": invoice["currency"],
            "total_amount": invoice["total_amount"],
            "invoice_payload": payload,
        },
    )
    return _queue(
        {
            "pre_checkout_query": {
                "id": query.query_id,
                "from": user_dict(message.chat),
                **query.data,
            }
        }
    )


def sandbox_successful_payment(*, query: SandboxQuery, bot: BotIdentity | None = None) -> dict[str, Any]:
    """После answerPreCheckoutQuery(ok=true): платёж + служебное сообщение successful_payment в очередь."""
    data = query.data
    charge_id = "stxSANDBOX" + secrets.token_urlsafe(24)
    if data["currency"] == "XTR":
        SandboxStarPayment.objects.create(
            charge_id=charge_id,
            user_id=query.chat.chat_id,
            amount=data["total_amount"],
            invoice_payload=data["invoice_payload"][:128],
        )
    payment = {
        "currency": data["currency"],
        "total_amount": data["total_amount"],
        "invoice_payload": data["invoice_payload"],
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
    }
    message = message_create(
        chat=query.chat, direction="user", kind="successful_payment", extra={"successful_payment": payment}
    )
    return _queue({"message": message_dict(message, bot=bot or default_bot())})


# --- доставка апдейтов боту ---


def sandbox_updates_pending() -> list[dict[str, Any]]:
    return [
        {"update_id": u.pk, **u.payload} for u in SandboxUpdate.objects.filter(delivered=False).order_by("id")
    ]


def _webhook_target(base_url: str) -> tuple[str, str]:
    webhook = SandboxWebhook.objects.filter(bot_id=default_bot().id).exclude(url="").first()
    if webhook is not None:
        return webhook.url, webhook.secret_token or settings.TG_WEBHOOK_SECRET
    # Бот в песочнице сам setWebhook не вызывает: вебхук — на том же сервере
    return base_url.rstrip("/") + WEBHOOK_PATH, settings.TG_WEBHOOK_SECRET


def sandbox_update_deliver(*, update_id: int, base_url: str) -> int:
    """POST апдейта на вебхук бота (как Telegram: JSON + секрет в заголовке); HTTP-статус или 0."""
    update = SandboxUpdate.objects.get(pk=update_id)
    url, secret = _webhook_target(base_url)
    headers = {"Content-Type": "application/json", SECRET_HEADER: secret}
    try:
        response = httpx.post(
            url, json={"update_id": update.pk, **update.payload}, headers=headers, timeout=DELIVERY_TIMEOUT_S
        )
        status, error = response.status_code, ""
        if status >= 300:
            error = f"Wrong response from the webhook: {status} {response.reason_phrase}"
    except httpx.HTTPError as exc:
        status, error = 0, f"Connection failed: {type(exc).__name__}"
    SandboxUpdate.objects.filter(pk=update.pk).update(
        delivered=200 <= status < 300, delivery_status=status or None
    )
    if error:
        SandboxWebhook.objects.filter(bot_id=default_bot().id).update(
            last_error_date=timezone.now(), last_error_message=error[:255]
        )
    return status


def sandbox_updates_deliver_pending(*, base_url: str, max_updates: int = 100) -> list[int]:
    """Доставить очередь по порядку, включая апдейты, появившиеся по ходу (successful_payment
    после ответа на pre_checkout_query); на первой неудаче — стоп: Telegram держит порядок."""
    statuses: list[int] = []
    while len(statuses) < max_updates:
        pending = SandboxUpdate.objects.filter(delivered=False).order_by("id").values_list("id", flat=True)
        update_id = pending.first()
        if update_id is None:
            break
        status = sandbox_update_deliver(update_id=update_id, base_url=base_url)
        statuses.append(status)
        if not 200 <= status < 300:
            break
    return statuses


# --- веб-чат: состояние чата для опроса страницей ---


def sandbox_chat_state(*, chat_id: int, limit: int = 200) -> dict[str, Any]:
    """Всё, что рисует страница чата: сообщения (с правками на месте), клавиатура, «печатает…», команды."""
    chat = SandboxChat.objects.get(chat_id=chat_id)
    bot = default_bot()
    recent = SandboxMessage.objects.filter(chat=chat, deleted=False).select_related("chat")
    messages = []
    for message in reversed(list(recent.order_by("-message_id")[:limit])):
        data = message_dict(message, bot=bot, nested=True)
        data["sandbox"] = {"direction": message.direction, "edited": message.edited, "kind": message.kind}
        messages.append(data)
    acting = chat.action if chat.action_until and chat.action_until > timezone.now() else ""
    commands = sandbox_commands(language_code=chat.language_code) or sandbox_commands()
    return {
        "user": user_dict(chat),
        "messages": messages,
        "reply_keyboard": chat.reply_keyboard,
        "action": acting,
        "commands": commands,
        "blocked_bot": chat.blocked_bot,
        "pending_updates": SandboxUpdate.objects.filter(delivered=False).count(),
    }


def sandbox_chat_file(*, file_id: str) -> tuple[bytes, str, str]:
    """Байты файла для страницы чата: содержимое, MIME (у фото — настоящий тип картинки), имя."""
    stored = SandboxFile.objects.get(file_id=file_id)
    content = bytes(stored.content)
    mime = files.image_mime(content) if stored.kind == "photo" else stored.mime_type
    return content, mime or "application/octet-stream", stored.file_name
