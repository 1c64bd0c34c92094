"""Веб-чат /sandbox/: страница, состояние для опроса, действия пользователя до вебхука бота."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from telegram import Bot
from telegram.error import Forbidden
from telegram.ext import ExtBot

from botapp.models import TelegramUser
from botapp.sandbox import services
from botapp.sandbox.models import SandboxUpdate
from botapp.telegram.sender import RecipientBlocked, SharedRateLimiter
from botapp.tests.sandbox.conftest import LiveSandbox, SandboxApi, png

USER = 880001


@contextmanager
def _csrf_client(base: str) -> Iterator[httpx.Client]:
    """Клиент как браузер: страница ставит cookie csrftoken, POST несёт её в заголовке."""
    with httpx.Client(base_url=base, timeout=60) as client:
        page = client.get("/sandbox/")
        assert page.status_code == 200
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        yield client


@pytest.mark.django_db
class TestPage:
    def test_the_page_is_self_contained(self, client: Client) -> None:
        page = client.get("/sandbox/")

        html = page.content.decode()
        assert page.status_code == 200
        assert 'name="viewport"' in html
        assert "<script src=" not in html  # без CDN и внешних скриптов
        assert "http://" not in html.replace("http://www.w3.org", "")

    @override_settings(TELEGRAM_SANDBOX=False)
    def test_the_page_is_absent_outside_sandbox_mode(self, client: Client) -> None:
        assert client.get("/sandbox/").status_code == 404
        assert client.get("/sandbox/chat/users").status_code == 404

    def test_users_are_listed_and_created(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.get("/sandbox/")
        token = client.cookies["csrftoken"].value

        created = client.post(
            "/sandbox/chat/users",
            data=json.dumps({"first_name": "Оля", "username": "olya", "language_code": "en"}),
            content_type="application/json",
            headers={"X-CSRFToken": token},
        )
        listed = client.get("/sandbox/chat/users").json()["users"]

        assert created.status_code == 201
        assert listed == [
            {"id": created.json()["id"], "first_name": "Оля", "username": "olya", "language_code": "en"}
        ]

    def test_posts_without_the_csrf_token_are_refused(self) -> None:
        client = Client(enforce_csrf_checks=True)

        reply = client.post("/sandbox/chat/users", data="{}", content_type="application/json")

        assert reply.status_code == 403

    def test_state_shows_edits_in_place_keyboards_and_actions(self, api: SandboxApi, client: Client) -> None:
        services.sandbox_user_get_or_create(user_id=USER, first_name="Аня")
        services.sandbox_user_send_text(chat_id=USER, text="/start")
        inline = {"inline_keyboard": [[{"text": "✅ Сгенерировать", "callback_data": "go:1"}]]}
        menu = {"keyboard": [[{"text": "🎨 Изображение"}, {"text": "💰 Баланс"}]], "resize_keyboard": True}
        card = api.call("sendMessage", {"chat_id": USER, "text": "в очереди", "reply_markup": inline}).result
        api.call("sendMessage", {"chat_id": USER, "text": "Меню", "reply_markup": menu})
        api.call("editMessageText", {"chat_id": USER, "message_id": card["message_id"], "text": "готово"})
        api.call("sendChatAction", {"chat_id": USER, "action": "upload_photo"})

        state = client.get(f"/sandbox/chat/{USER}/state").json()

        assert [(m["sandbox"]["direction"], m.get("text")) for m in state["messages"]] == [
            ("user", "/start"),
            ("bot", "готово"),
            ("bot", "Меню"),
        ]
        assert state["messages"][1]["sandbox"]["edited"] is True
        assert state["reply_keyboard"]["keyboard"][0][1] == {"text": "💰 Баланс"}
        assert state["action"] == "upload_photo"

    def test_files_are_served_for_display(self, api: SandboxApi, client: Client) -> None:
        image = png(8, 8)
        sent = api.call("sendPhoto", {"chat_id": USER}, files={"photo": ("r.png", image, "image/png")}).result

        response = client.get(f"/sandbox/chat/file/{sent['photo'][-1]['file_id']}")

        assert response.content == image
        assert response["Content-Type"] == "image/png"

    def test_images_go_as_an_album_and_other_files_as_documents(self, client: Client) -> None:
        services.sandbox_user_get_or_create(user_id=USER)
        uploads = [
            SimpleUploadedFile("a.png", png(4, 4), "image/png"),
            SimpleUploadedFile("b.png", png(6, 4), "image/png"),
            SimpleUploadedFile("notes.txt", b"prompt ideas", "text/plain"),
        ]

        client.post(f"/sandbox/chat/{USER}/send", data={"text": "объедини", "files": uploads})

        sent = [(m.kind, m.caption, bool(m.media_group_id)) for m in services.sandbox_messages(chat_id=USER)]
        assert sent == [("photo", "объедини", True), ("photo", "", True), ("document", "", False)]

    def test_a_broken_image_sent_as_a_photo_is_a_client_error(self, client: Client) -> None:
        services.sandbox_user_get_or_create(user_id=USER)
        fake = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n-broken", "image/png")

        reply = client.post(f"/sandbox/chat/{USER}/send", data={"files": [fake]})

        assert reply.status_code == 400
        assert reply.json() == {"error": "Bad Request: IMAGE_PROCESS_FAILED"}

    def test_pressing_a_missing_button_is_a_client_error(self, api: SandboxApi, client: Client) -> None:
        sent = api.call("sendMessage", {"chat_id": USER, "text": "без кнопок"}).result

        reply = client.post(
            f"/sandbox/chat/{USER}/press",
            data=json.dumps({"message_id": sent["message_id"], "callback_data": "x"}),
            content_type="application/json",
        )

        assert reply.status_code == 400


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_message_typed_in_the_chat_reaches_the_real_bot(sandbox_mode_server: str) -> None:
    with _csrf_client(sandbox_mode_server) as browser:
        user_id = browser.post(
            "/sandbox/chat/users", json={"first_name": "Ваня", "language_code": "ru"}
        ).json()["id"]

        sent = browser.post(f"/sandbox/chat/{user_id}/send", data={"text": "/start"})
        state = browser.get(f"/sandbox/chat/{user_id}/state").json()

    assert sent.json() == {"statuses": [200]}
    directions = [m["sandbox"]["direction"] for m in state["messages"]]
    assert directions[0] == "user"
    assert "bot" in directions, state


@pytest.fixture
def fake_bot(live_sandbox: LiveSandbox) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Вебхук «бота», который одобряет оплату через настоящий эмулятор (answerPreCheckoutQuery)."""
    received: list[dict[str, Any]] = []
    bot_url = f"{live_sandbox.base}/sandbox/api/bot{live_sandbox.bot().token}"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            update = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            received.append(update)
            if "pre_checkout_query" in update:
                httpx.post(
                    f"{bot_url}/answerPreCheckoutQuery",
                    data={"pre_checkout_query_id": update["pre_checkout_query"]["id"], "ok": "true"},
                )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    httpx.post(f"{bot_url}/setWebhook", data={"url": f"http://127.0.0.1:{server.server_address[1]}/hook"})
    try:
        yield bot_url, received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_pay_in_the_chat_runs_pre_checkout_then_successful_payment(
    live_sandbox: LiveSandbox, fake_bot: tuple[str, list[dict[str, Any]]]
) -> None:
    bot_url, received = fake_bot
    services.sandbox_user_get_or_create(user_id=USER)
    invoice = httpx.post(
        f"{bot_url}/sendInvoice",
        data={
            "chat_id": USER,
            "title": "100 токенов",
            "description": "Пакет",
            "payload": "order:7",
            "currency": "XTR",
            "prices": json.dumps([{"label": "100", "amount": 30}]),
        },
    ).json()["result"]

    with _csrf_client(live_sandbox.base) as browser:
        paid = browser.post(f"/sandbox/chat/{USER}/pay", json={"message_id": invoice["message_id"]}).json()
        state = browser.get(f"/sandbox/chat/{USER}/state").json()

    assert paid == {"statuses": [200, 200], "answer": {"ok": True, "error_message": ""}}
    assert [next(k for k in u if k != "update_id") for u in received] == ["pre_checkout_query", "message"]
    assert received[1]["message"]["successful_payment"]["invoice_payload"] == "order:7"
    assert state["messages"][-1]["successful_payment"]["total_amount"] == 30


async def _send_as_a_worker(base: str, chat_id: int, *, limiter: bool = True) -> BaseException | None:
    """Отправка из другого процесса (как воркер): общий лимитер с отметками в Redis или голый Bot."""
    api = f"{base}/sandbox/api"
    kwargs: dict[str, Any] = {"base_url": f"{api}/bot", "base_file_url": f"{api}/file/bot"}
    if limiter:
        bot: Bot = ExtBot(settings.TELEGRAM_BOT_TOKEN, rate_limiter=SharedRateLimiter(max_wait=2), **kwargs)
    else:
        bot = Bot(settings.TELEGRAM_BOT_TOKEN, **kwargs)
    try:
        async with bot:
            await bot.send_message(chat_id, "новость")
    except (RecipientBlocked, Forbidden) as exc:
        return exc
    return None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_blocking_the_bot_in_the_chat_reaches_the_bot_and_stops_every_sender(
    sandbox_mode_server: str,
) -> None:
    with _csrf_client(sandbox_mode_server) as browser:
        user_id = browser.post(
            "/sandbox/chat/users", json={"first_name": "Оля", "language_code": "ru"}
        ).json()["id"]
        started = browser.post(f"/sandbox/chat/{user_id}/send", data={"text": "/start"}).json()

        blocked = browser.post(f"/sandbox/chat/{user_id}/block", json={"blocked": True}).json()
        refused = browser.post(f"/sandbox/chat/{user_id}/send", data={"text": "/help"})
        state = browser.get(f"/sandbox/chat/{user_id}/state").json()
        calls_before = len(services.sandbox_calls(method="sendMessage", chat_id=user_id))
        # Бот узнал о блокировке из my_chat_member: флаг в БД и отметка для всех процессов
        from_worker = asyncio.run(_send_as_a_worker(sandbox_mode_server, user_id))
        calls_after_worker = len(services.sandbox_calls(method="sendMessage", chat_id=user_id))
        # Эмулятор сам отвечает 403, как Telegram, тому, кто отметку не проверяет
        bare = asyncio.run(_send_as_a_worker(sandbox_mode_server, user_id, limiter=False))

        unblocked = browser.post(f"/sandbox/chat/{user_id}/block", json={"blocked": False}).json()
        again = browser.post(f"/sandbox/chat/{user_id}/send", data={"text": "/help"}).json()
        after_return = asyncio.run(_send_as_a_worker(sandbox_mode_server, user_id))

    assert started == {"statuses": [200]}
    assert blocked == {"statuses": [200], "blocked_bot": True}
    assert refused.status_code == 400
    assert state["blocked_bot"] is True
    assert isinstance(from_worker, RecipientBlocked)
    assert calls_after_worker == calls_before
    assert isinstance(bare, Forbidden)
    assert "bot was blocked by the user" in str(bare)
    assert unblocked == {"statuses": [200], "blocked_bot": False}
    assert again == {"statuses": [200]}
    assert after_return is None
    assert not TelegramUser.objects.get(telegram_id=user_id).is_blocked
    kinds = [u.payload["my_chat_member"]["new_chat_member"]["status"] for u in _member_updates()]
    assert kinds == ["kicked", "member"]


def _member_updates() -> list[SandboxUpdate]:
    return [u for u in SandboxUpdate.objects.order_by("id") if "my_chat_member" in u.payload]


@pytest.mark.django_db
def test_a_repeated_block_sends_nothing_and_a_blocked_user_cannot_write() -> None:
    services.sandbox_user_get_or_create(user_id=USER)

    first = services.sandbox_user_block_bot(chat_id=USER, blocked=True)
    repeated = services.sandbox_user_block_bot(chat_id=USER, blocked=True)

    assert first is not None
    assert first["my_chat_member"]["new_chat_member"] == {
        "status": "kicked", "user": first["my_chat_member"]["old_chat_member"]["user"], "until_date": 0
    }  # fmt: skip
    assert repeated is None
    with pytest.raises(ValueError, match="unblock it first"):
        services.sandbox_user_send_text(chat_id=USER, text="/start")
