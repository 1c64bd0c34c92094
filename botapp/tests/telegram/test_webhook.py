"""POST /telegram/webhook/: коды ответа, дедупликация, падения — через настоящий ASGI-сервер."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from botapp.models import ChatLogEntry, ErrorGroup, InboxUpdate, TelegramUser
from botapp.tests.support import processes
from botapp.tests.support.fakes import ApiError, FakeBotApi, fake_bot_api
from botapp.tests.support.marks import mark_blocked, marked_blocked

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TOKEN = "555000111:TESTWebhookSuiteTokenNotReal_abcdefghij"  # pragma: allowlist secret
SECRET = "webhook-test-secret"  # pragma: allowlist secret
_ids = itertools.count(int(time.time()) * 1000)
_hang = threading.Event()
# Чат, чей первый ответ «застревает» в Telegram, пока тест не отпустит: первая копия апдейта ещё в обработке
HELD_CHAT = 727272
_held = threading.Event()
_release = threading.Event()


def _message(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "message_id": next(_ids) % 1_000_000,
        "date": int(time.time()),
        "chat": {"id": int(params["chat_id"]), "type": "private"},
        "from": {"id": 555000111, "is_bot": True, "first_name": "Nano", "username": "nano_bot"},
        "text": params.get("text", ""),
    }


def responder(method: str, params: dict[str, Any]) -> Any:
    """Поведение подделки зависит только от запроса."""
    if method == "getMe":
        return {"id": 555000111, "is_bot": True, "first_name": "Nano", "username": "nano_bot"}
    if method == "setMyCommands":
        return True
    if method == "sendMessage":
        text = params.get("text", "")
        if "How it works" in text:
            return ApiError(400, "Bad Request: can't parse entities")
        if "Terms of use" in text and not _hang.is_set():
            _hang.set()
            time.sleep(30)  # «зависший» Telegram: сервер убьют во время ожидания
        if int(params["chat_id"]) == HELD_CHAT and not _held.is_set():
            _held.set()
            _release.wait(30)
        return _message(params)
    return True


@pytest.fixture(scope="module")
def bot_api() -> Iterator[FakeBotApi]:
    with fake_bot_api(responder) as (base, api):
        api.base = base  # type: ignore[attr-defined]
        yield api


def _env(api: FakeBotApi, **extra: str) -> dict[str, str]:
    return processes.django_env(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TG_WEBHOOK_SECRET=SECRET,
        TELEGRAM_API_BASE_URL=api.base,  # type: ignore[attr-defined]
        INBOX_LEASE_S="12",
        **extra,
    )


@pytest.fixture
def server(bot_api: FakeBotApi, logs_dir: Path) -> Iterator[str]:
    bot_api.calls.clear()
    with processes.web_server(_env(bot_api), logs_dir / "web-webhook.log") as base:
        yield base


def command_update(text: str, user_id: int = 424242, update_id: int | None = None) -> dict[str, Any]:
    command = text.split()[0]
    return {
        "update_id": update_id if update_id is not None else next(_ids),
        "message": {
            "message_id": next(_ids) % 1_000_000,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Ann"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        },
    }


def post(
    base: str, payload: Any, secret: str = SECRET, content_type: str = "application/json"
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": content_type, "X-Telegram-Bot-Api-Secret-Token": secret}
    return httpx.post(f"{base}/telegram/webhook/", content=body, headers=headers, timeout=30)


def sent_texts(api: FakeBotApi) -> list[str]:
    return [params.get("text", "") for method, params in api.calls if method == "sendMessage"]


def test_it_rejects_a_wrong_or_missing_secret(server: str, bot_api: FakeBotApi) -> None:
    wrong = "not-the-" + "secret"
    assert post(server, command_update("/start"), secret=wrong).status_code == 403
    response = httpx.post(f"{server}/telegram/webhook/", json=command_update("/start"), timeout=10)
    assert response.status_code == 403
    assert sent_texts(bot_api) == []


def test_it_answers_415_400_and_413_for_bad_bodies(server: str) -> None:
    assert post(server, b"update_id=1", content_type="application/x-www-form-urlencoded").status_code == 415
    assert post(server, b"{not json").status_code == 400
    assert post(server, {"message": {}}).status_code == 400
    assert post(server, {"update_id": "12"}).status_code == 400
    assert post(server, [1, 2]).status_code == 400
    huge = {"update_id": 1, "padding": "x" * (1024 * 1024 + 10)}
    assert post(server, huge).status_code == 413


def test_only_post_is_allowed(server: str) -> None:
    response = httpx.get(f"{server}/telegram/webhook/", timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_charset_in_the_content_type_is_accepted(server: str, bot_api: FakeBotApi) -> None:
    update = command_update("/start", user_id=121212)
    assert post(server, update, content_type="application/json; charset=utf-8").status_code == 200
    assert InboxUpdate.objects.get(update_id=update["update_id"]).status == "done"


def test_unknown_update_types_get_200_and_nothing_else(server: str, bot_api: FakeBotApi) -> None:
    response = post(server, {"update_id": next(_ids), "some_future_update": {"x": 1}})
    assert response.status_code == 200
    assert sent_texts(bot_api) == []


def test_the_same_update_five_times_in_a_row_is_handled_once(server: str, bot_api: FakeBotApi) -> None:
    update = command_update("/start")
    assert [post(server, update).status_code for _ in range(5)] == [200] * 5
    assert len(sent_texts(bot_api)) == 1
    row = InboxUpdate.objects.get(update_id=update["update_id"])
    assert row.status == "done"
    assert TelegramUser.objects.filter(telegram_id=424242).count() == 1


def test_the_same_update_five_times_concurrently_is_handled_once(server: str, bot_api: FakeBotApi) -> None:
    update = command_update("/start", user_id=515151)
    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(lambda _: post(server, update).status_code, range(5)))
    assert statuses == [200] * 5
    time.sleep(0.5)
    assert len([t for t in sent_texts(bot_api) if "Hi, Ann" in t]) == 1
    # Пользователь и входящее пишутся вместе с захватом — у копий ничего не пишется
    incoming = ChatLogEntry.objects.filter(user__telegram_id=515151, direction="in")
    assert [entry.message_id for entry in incoming] == [update["message"]["message_id"]]


def test_a_copy_arriving_while_the_first_is_processed_gets_200_at_once(
    server: str, bot_api: FakeBotApi
) -> None:
    """Копия не ждёт первую обработку и не запускает обработчик второй раз."""
    _held.clear()
    _release.clear()
    update = command_update("/start", user_id=HELD_CHAT)
    with ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(post, server, update)
            processes.wait_for(_held.is_set, timeout=15, what="the first copy's handler to reach Telegram")
            started = time.monotonic()
            copy = post(server, update)
            elapsed = time.monotonic() - started
            assert copy.status_code == 200
            assert elapsed < 2, f"the copy waited {elapsed:.1f} s"
            assert not first.done()
            assert InboxUpdate.objects.get(update_id=update["update_id"]).status == "processing"
        finally:
            _release.set()
        assert first.result().status_code == 200
    assert len([t for t in sent_texts(bot_api) if "Hi, Ann" in t]) == 1
    row = InboxUpdate.objects.get(update_id=update["update_id"])
    assert (row.status, row.attempts) == ("done", 1)


def test_concurrent_updates_are_all_answered_and_marked_done(server: str, bot_api: FakeBotApi) -> None:
    """Отметки done одновременных апдейтов уходят пачками, но 200 — только после записи своей."""
    updates = [command_update("/start", user_id=300000 + i) for i in range(30)]
    with ThreadPoolExecutor(15) as pool:
        statuses = list(pool.map(lambda update: post(server, update).status_code, updates))
    assert statuses == [200] * 30
    rows = InboxUpdate.objects.filter(update_id__in=[u["update_id"] for u in updates])
    assert sorted(row.status for row in rows) == ["done"] * 30
    assert TelegramUser.objects.filter(telegram_id__range=(300000, 300029)).count() == 30
    assert (
        ChatLogEntry.objects.filter(user__telegram_id__range=(300000, 300029), direction="in").count() == 30
    )


def test_a_handler_exception_gives_200_an_error_event_and_an_apology(
    server: str, bot_api: FakeBotApi
) -> None:
    response = post(server, command_update("/help", user_id=616161))
    assert response.status_code == 200
    texts = sent_texts(bot_api)
    assert any("How it works" in t for t in texts)
    assert texts[-1].startswith("Sorry, something went wrong")
    group = ErrorGroup.objects.get(source="telegram.handler")
    assert group.count == 1
    assert "BadRequest" in group.title
    assert TOKEN not in group.events.get().stack


def test_after_the_database_drops_the_web_connections_the_next_update_is_answered(
    bot_api: FakeBotApi, logs_dir: Path
) -> None:
    """Перезапуск или переключение PostgreSQL: соединения в пуле веба мертвы, следующий апдейт — не 500."""
    bot_api.calls.clear()
    env = _env(bot_api, PGAPPNAME="nb-web-dropped")  # libpq: так отличаем сессии веба от сессий теста
    with processes.web_server(env, logs_dir / "web-db-drop.log") as base:
        assert post(base, command_update("/privacy", user_id=818181)).status_code == 200
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                ["nb-web-dropped"],
            )
            assert cursor.fetchone()[0] >= 1
        assert post(base, command_update("/privacy", user_id=818181)).status_code == 200
    assert len([t for t in sent_texts(bot_api) if t.startswith("We store your Telegram id")]) == 2


def test_a_crash_mid_handler_then_redelivery_is_processed_once(bot_api: FakeBotApi, logs_dir: Path) -> None:
    bot_api.calls.clear()
    _hang.clear()
    update = command_update("/terms", user_id=717171)
    env = _env(bot_api)
    port = processes.free_port()
    command = [
        str(processes.BIN / "uvicorn"),
        "config.asgi:application",
        "--port",
        str(port),
        "--no-access-log",
    ]
    base = f"http://127.0.0.1:{port}"
    with processes.running(command, env, logs_dir / "web-crash.log") as proc:
        processes.wait_for(lambda: processes.http_ready(f"{base}/api/health/live"), timeout=30)
        threading.Thread(target=lambda: _swallow(lambda: post(base, update)), daemon=True).start()
        processes.wait_for(_hang.is_set, timeout=15, what="the handler to reach Telegram")
        os.killpg(proc.pid, signal.SIGKILL)  # процесс умер посреди обработчика
    row = InboxUpdate.objects.get(update_id=update["update_id"])
    assert row.status == "processing"
    assert (row.lease_until - timezone.now()).total_seconds() > 5, "lease too short for this test"
    with processes.web_server(env, logs_dir / "web-crash-2.log") as base2:
        # Копия, пришедшая пока аренда жива, не обрабатывается повторно
        assert post(base2, update).status_code == 200
        assert len([t for t in sent_texts(bot_api) if "Terms of use" in t]) == 1
        # Аренда истекла — следующая копия от Telegram забирает обработку
        time.sleep(max(0.0, (row.lease_until - timezone.now()).total_seconds()) + 0.5)
        assert post(base2, update).status_code == 200
        assert post(base2, update).status_code == 200
    row.refresh_from_db()
    assert row.status == "done"
    assert row.attempts == 2
    assert len([t for t in sent_texts(bot_api) if "Terms of use" in t]) == 2


def _swallow(fn: Any) -> None:
    with contextlib.suppress(httpx.HTTPError):
        fn()


def test_a_banned_user_gets_one_notice_a_day_and_nothing_else(server: str, bot_api: FakeBotApi) -> None:
    post(server, command_update("/start", user_id=818181))
    TelegramUser.objects.filter(telegram_id=818181).update(is_banned=True)
    bot_api.calls.clear()
    for text in ("/help", "/settings", "/start"):
        assert post(server, command_update(text, user_id=818181)).status_code == 200
    texts = sent_texts(bot_api)
    assert len(texts) == 1
    assert "suspended" in texts[0]


def test_my_chat_member_tracks_whether_the_user_blocked_the_bot(server: str, bot_api: FakeBotApi) -> None:
    post(server, command_update("/start", user_id=919191))

    def member_update(status: str) -> dict[str, Any]:
        user = {"id": 919191, "is_bot": False, "first_name": "Ann"}
        bot = {"id": 555000111, "is_bot": True, "first_name": "Nano"}
        return {
            "update_id": next(_ids),
            "my_chat_member": {
                "chat": {"id": 919191, "type": "private", "first_name": "Ann"},
                "from": user,
                "date": int(time.time()),
                "old_chat_member": {"status": "member", "user": bot},
                "new_chat_member": {
                    "status": status,
                    "user": bot,
                    **({"until_date": 0} if status == "kicked" else {}),
                },
            },
        }

    assert post(server, member_update("kicked")).status_code == 200
    assert TelegramUser.objects.get(telegram_id=919191).is_blocked
    assert asyncio.run(marked_blocked(919191))  # и отметка для отправителей всех процессов
    assert post(server, member_update("member")).status_code == 200
    assert not TelegramUser.objects.get(telegram_id=919191).is_blocked
    assert not asyncio.run(marked_blocked(919191))


def test_a_user_marked_blocked_who_writes_gets_the_reply(server: str, bot_api: FakeBotApi) -> None:
    """Отметка могла устареть (my_chat_member потерялся): в БД он не заблокирован — отметка снимается."""
    asyncio.run(mark_blocked(939393))
    bot_api.calls.clear()

    assert post(server, command_update("/help", user_id=939393)).status_code == 200

    chats = [params["chat_id"] for method, params in bot_api.calls if method == "sendMessage"]
    assert chats
    assert set(chats) == {"939393"}
    assert not asyncio.run(marked_blocked(939393))


def test_a_block_as_the_first_update_still_records_the_user(server: str, bot_api: FakeBotApi) -> None:
    """Пользователь, которого мы ещё не видели, заблокировал бота: строка есть, и она «заблокирован»."""
    bot = {"id": 555000111, "is_bot": True, "first_name": "Nano"}
    update = {
        "update_id": next(_ids),
        "my_chat_member": {
            "chat": {"id": 929292, "type": "private", "first_name": "Bea"},
            "from": {"id": 929292, "is_bot": False, "first_name": "Bea", "language_code": "ru"},
            "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": bot},
            "new_chat_member": {"status": "kicked", "user": bot, "until_date": 0},
        },
    }
    assert post(server, update).status_code == 200
    user = TelegramUser.objects.get(telegram_id=929292)
    assert (user.first_name, user.language_code, user.is_blocked) == ("Bea", "ru", True)
    assert [name for name, _params in bot_api.calls if name != "getMe"] == []


def test_the_hourly_prune_deletes_inbox_rows_older_than_48_hours() -> None:
    from botapp.tasks.maintenance import inbox_prune

    now = timezone.now()
    ages = {1: timedelta(hours=49), 2: timedelta(hours=48, minutes=1), 3: timedelta(hours=47, minutes=59)}
    for update_id, age in ages.items():
        InboxUpdate.objects.create(update_id=update_id, update_type="message", status="done", lease_until=now)
        # received_at — auto_now_add: возраст задаём отдельным UPDATE
        InboxUpdate.objects.filter(update_id=update_id).update(received_at=now - age)
    InboxUpdate.objects.create(update_id=4, update_type="message", status="processing", lease_until=now)
    inbox_prune()
    assert sorted(InboxUpdate.objects.values_list("update_id", flat=True)) == [3, 4]
