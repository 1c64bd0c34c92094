"""Python-API песочницы: действия пользователя → апдейты, доставка на вебхук, сбои, сброс."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from botapp.sandbox import services
from botapp.sandbox.models import SandboxMessage, SandboxQuery, SandboxWebhook
from botapp.sandbox.services import Failure
from botapp.tests.sandbox.conftest import SandboxApi, png

pytestmark = [pytest.mark.django_db]

USER = 777001


@pytest.fixture
def user(db: Any) -> int:
    return services.sandbox_user_get_or_create(
        user_id=USER, first_name="Аня", username="anya", language_code="ru"
    ).chat_id


def test_a_command_from_the_user_carries_a_bot_command_entity(user: int) -> None:
    update = services.sandbox_user_send_text(chat_id=user, text="/start ref_AbC-1")

    message = update["message"]
    assert update["update_id"] > 0
    assert message["text"] == "/start ref_AbC-1"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["from"] == {
        "id": USER,
        "is_bot": False,
        "first_name": "Аня",
        "username": "anya",
        "language_code": "ru",
    }
    assert message["chat"]["type"] == "private"


def test_update_ids_keep_growing_after_a_reset(user: int) -> None:
    first = services.sandbox_user_send_text(chat_id=user, text="раз")["update_id"]
    services.sandbox_reset()
    second = services.sandbox_user_send_text(chat_id=USER, text="два")["update_id"]

    # Входящий ящик бота дедуплицирует по update_id: повтор номера потерял бы апдейт
    assert second > first


def test_an_album_from_the_user_shares_a_group_and_is_downloadable(api: SandboxApi, user: int) -> None:
    images = [png(30, 20), png(40, 20)]

    updates = services.sandbox_user_send_photos(chat_id=user, photos=images, caption="совмести")

    messages = [u["message"] for u in updates]
    assert messages[0]["caption"] == "совмести"
    assert "caption" not in messages[1]
    assert messages[0]["media_group_id"] == messages[1]["media_group_id"]
    file_id = messages[1]["photo"][-1]["file_id"]
    path = api.call("getFile", {"file_id": file_id}).result["file_path"]
    assert api.client.get(f"/sandbox/api/file/bot{api.token}/{path}").content == images[1]
    assert [f.file_id for f in services.sandbox_user_files(chat_id=user)][1] == file_id


def test_a_document_from_the_user_keeps_its_name(user: int) -> None:
    update = services.sandbox_user_send_document(chat_id=user, content=png(), file_name="ref.png")

    document = update["message"]["document"]
    assert document["file_name"] == "ref.png"
    assert document["mime_type"] == "image/png"


def test_pressing_a_button_needs_that_button(api: SandboxApi, user: int) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Да", "callback_data": "confirm:1"}]]}
    sent = api.call("sendMessage", {"chat_id": user, "text": "Точно?", "reply_markup": keyboard}).result

    update = services.sandbox_user_press_button(
        chat_id=user, message_id=sent["message_id"], callback_data="confirm:1"
    )

    assert update["callback_query"]["data"] == "confirm:1"
    assert update["callback_query"]["message"]["reply_markup"] == keyboard
    with pytest.raises(ValueError, match="no button"):
        services.sandbox_user_press_button(chat_id=user, message_id=sent["message_id"], callback_data="nope")


def test_answering_a_callback_query_records_the_answer(api: SandboxApi, user: int) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Да", "callback_data": "y"}]]}
    sent = api.call("sendMessage", {"chat_id": user, "text": "?", "reply_markup": keyboard}).result
    query_id = services.sandbox_user_press_button(
        chat_id=user, message_id=sent["message_id"], callback_data="y"
    )["callback_query"]["id"]

    api.call("answerCallbackQuery", {"callback_query_id": query_id, "text": "Готово", "show_alert": True})

    query = SandboxQuery.objects.get(query_id=query_id)
    assert query.answered
    assert query.answer == {"text": "Готово", "show_alert": True}


def _invoice(api: SandboxApi, user: int) -> int:
    params = {
        "chat_id": user,
        "title": "100 токенов",
        "description": "Пакет",
        "payload": "order:42",
        "currency": "XTR",
        "prices": [{"label": "100", "amount": 75}],
    }
    return int(api.call("sendInvoice", params).result["message_id"])


@pytest.mark.emulator_violations_expected
def test_a_declined_pre_checkout_creates_no_payment(api: SandboxApi, user: int) -> None:
    query_id = services.sandbox_user_pay_invoice(chat_id=user, message_id=_invoice(api, user))[
        "pre_checkout_query"
    ]["id"]

    silent = api.call("answerPreCheckoutQuery", {"pre_checkout_query_id": query_id, "ok": False})
    declined = api.call(
        "answerPreCheckoutQuery", {"pre_checkout_query_id": query_id, "ok": False, "error_message": "Нет"}
    )

    assert silent.description == "Bad Request: ERROR_MESSAGE_EMPTY"
    assert declined.result is True
    assert not SandboxMessage.objects.filter(kind="successful_payment").exists()


@pytest.mark.emulator_violations_expected
def test_a_pre_checkout_answered_after_ten_seconds_is_too_old(api: SandboxApi, user: int) -> None:
    update = services.sandbox_user_pay_invoice(chat_id=user, message_id=_invoice(api, user))
    query_id = update["pre_checkout_query"]["id"]
    SandboxQuery.objects.filter(query_id=query_id).update(created_at=timezone.now() - timedelta(seconds=11))

    reply = api.call("answerPreCheckoutQuery", {"pre_checkout_query_id": query_id, "ok": True})

    assert reply.status == 400
    assert "query is too old" in reply.description


def test_an_approved_pre_checkout_queues_the_successful_payment(api: SandboxApi, user: int) -> None:
    update = services.sandbox_user_pay_invoice(chat_id=user, message_id=_invoice(api, user))

    api.call(
        "answerPreCheckoutQuery", {"pre_checkout_query_id": update["pre_checkout_query"]["id"], "ok": True}
    )

    pending = services.sandbox_updates_pending()
    assert [next(k for k in u if k != "update_id") for u in pending] == ["pre_checkout_query", "message"]
    payment = pending[-1]["message"]["successful_payment"]
    assert payment["total_amount"] == 75
    assert payment["invoice_payload"] == "order:42"
    assert payment["telegram_payment_charge_id"].startswith("stx")


@pytest.mark.emulator_violations_expected
def test_get_updates_serves_the_queue_unless_a_webhook_is_set(api: SandboxApi, user: int) -> None:
    first = services.sandbox_user_send_text(chat_id=user, text="a")["update_id"]
    second = services.sandbox_user_send_text(chat_id=user, text="b")["update_id"]

    assert [u["update_id"] for u in api.call("getUpdates").result] == [first, second]
    assert [u["update_id"] for u in api.call("getUpdates", {"offset": second}).result] == [second]
    api.call("setWebhook", {"url": "https://example.com/hook"})
    conflict = api.call("getUpdates")

    assert conflict.status == 409
    assert conflict.description.startswith("Conflict: can't use getUpdates method while webhook is active")


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]], list[int]]]:
    """Локальный «бот»: записывает апдейты и заголовки, отвечает кодами из очереди."""
    received: list[dict[str, Any]] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "headers": dict(self.headers), "update": json.loads(body)})
            self.send_response(statuses.pop(0) if statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received, statuses
    finally:
        server.shutdown()
        server.server_close()


def test_updates_are_posted_to_the_webhook_with_the_secret(
    user: int, webhook_receiver: tuple[str, list[dict[str, Any]], list[int]]
) -> None:
    base, received, _ = webhook_receiver
    update = services.sandbox_user_send_text(chat_id=user, text="/help")

    status = services.sandbox_update_deliver(update_id=update["update_id"], base_url=base)

    assert status == 200
    assert received[0]["path"] == "/telegram/webhook/"
    assert received[0]["headers"]["X-Telegram-Bot-Api-Secret-Token"] == settings.TG_WEBHOOK_SECRET
    assert received[0]["headers"]["Content-Type"] == "application/json"
    assert received[0]["update"] == update
    assert services.sandbox_updates_pending() == []


def test_a_failed_delivery_stops_the_queue_and_is_reported(
    api: SandboxApi, user: int, webhook_receiver: tuple[str, list[dict[str, Any]], list[int]]
) -> None:
    base, received, statuses = webhook_receiver
    hook_secret = "own-secret"  # pragma: allowlist secret
    api.call("setWebhook", {"url": f"{base}/custom/hook", "secret_token": hook_secret})
    services.sandbox_user_send_text(chat_id=user, text="1")
    services.sandbox_user_send_text(chat_id=user, text="2")
    statuses.append(500)

    assert services.sandbox_updates_deliver_pending(base_url="http://unused") == [500]

    assert received[0]["path"] == "/custom/hook"
    assert received[0]["headers"]["X-Telegram-Bot-Api-Secret-Token"] == hook_secret
    assert len(services.sandbox_updates_pending()) == 2
    info = api.call("getWebhookInfo").result
    assert info["pending_update_count"] == 2
    assert info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    assert services.sandbox_updates_deliver_pending(base_url="http://unused") == [200, 200]


def test_an_injected_failure_runs_out_after_n_calls(api: SandboxApi) -> None:
    services.sandbox_inject_failure(method="sendMessage", failure=Failure.SERVER_ERROR, times=2)

    statuses = [api.call("sendMessage", {"chat_id": 5, "text": "x"}).status for _ in range(3)]

    assert statuses == [502, 502, 200]
    assert [c.injected for c in services.sandbox_calls(method="sendMessage")] == [True, True, False]


def test_a_custom_failure_carries_its_code_and_text(api: SandboxApi) -> None:
    services.sandbox_inject_failure(
        method="getfile", error_code=400, description="Bad Request: wrong file_id"
    )

    reply = api.call("getFile", {"file_id": "x"})

    assert reply.body == {"ok": False, "error_code": 400, "description": "Bad Request: wrong file_id"}


@pytest.mark.emulator_violations_expected
def test_an_invalid_request_does_not_spend_an_injected_failure(api: SandboxApi) -> None:
    services.sandbox_inject_failure(method="sendMessage", failure=Failure.BLOCKED)

    assert api.call("sendMessage", {"chat_id": 5}).status == 400
    assert api.call("sendMessage", {"chat_id": 5, "text": "x"}).status == 403


def test_injecting_an_unknown_method_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="unknown Bot API method"):
        services.sandbox_inject_failure(method="sendTelepathy")


def test_calls_can_be_filtered_by_method_and_chat(api: SandboxApi) -> None:
    api.call("sendMessage", {"chat_id": 1, "text": "a"})
    api.call("sendMessage", {"chat_id": 2, "text": "b"})
    api.call("getMe")

    assert [c.params["text"] for c in services.sandbox_calls(method="sendMessage")] == ["a", "b"]
    assert [c.method for c in services.sandbox_calls(chat_id=2)] == ["sendMessage"]
    assert len(services.sandbox_calls()) == 3


def test_reset_forgets_everything(api: SandboxApi, user: int) -> None:
    api.call("sendMessage", {"chat_id": user, "text": "a"})
    api.call("setWebhook", {"url": "https://example.com/hook"})
    services.sandbox_inject_failure(method="getMe")

    services.sandbox_reset()

    assert services.sandbox_calls() == []
    assert services.sandbox_messages(chat_id=user) == []
    assert not SandboxWebhook.objects.exists()
    assert api.call("getMe").status == 200
