"""Сторож beat оповещает операторов, когда здоровье уходит из `ok`, с общим кулдауном."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from botapp.ops import health, heartbeats, notify
from botapp.ops.watchdog import watchdog_check
from botapp.tests.support.fakes import FakeBotApi, fake_bot_api

pytestmark = pytest.mark.django_db(transaction=True)

NOTIFY_TOKEN = "987654321:TESTNotifyTokenForWatchdogTests_abcdef"  # pragma: allowlist secret


def _responder(method: str, params: dict[str, Any]) -> Any:
    if method == "getMe":
        return {"id": 987654321, "is_bot": True, "first_name": "Ops", "username": "ops_bot"}
    return {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": int(params["chat_id"]), "type": "group"},
    }


@pytest.fixture
def notify_api() -> Iterator[FakeBotApi]:
    prefix = f"{settings.REDIS_KEY_PREFIX}wd{time.monotonic_ns()}:"
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"{prefix}cache"}}
    with fake_bot_api(_responder) as (base, api), override_settings(
        REDIS_KEY_PREFIX=prefix, CACHES=caches, TELEGRAM_API_BASE_URL=base,
        TELEGRAM_NOTIFY_TOKEN=NOTIFY_TOKEN, TELEGRAM_NOTIFY_CHAT_ID="-1001234567890",
    ):  # fmt: skip
        yield api


def _messages(api: FakeBotApi) -> list[str]:
    return [params["text"] for method, params in api.calls if method == "sendMessage"]


def test_it_alerts_once_per_cooldown_and_once_on_recovery(notify_api: FakeBotApi) -> None:
    # Нет пульса воркера → down
    heartbeats.heartbeat_record(component=heartbeats.BEAT)
    assert watchdog_check() == health.DOWN
    assert watchdog_check() == health.DOWN
    sent = _messages(notify_api)
    assert len(sent) == 1
    assert "down" in sent[0]
    assert "workers" in sent[0]
    assert {params["chat_id"] for method, params in notify_api.calls if method == "sendMessage"} == {
        "-1001234567890"
    }

    heartbeats.heartbeat_record(component=heartbeats.WORKER)
    assert watchdog_check() == health.OK
    assert watchdog_check() == health.OK
    sent = _messages(notify_api)
    assert len(sent) == 2
    assert "ok again" in sent[1]


def test_the_cooldown_is_shared_between_processes(notify_api: FakeBotApi) -> None:
    from django.core.cache import cache

    # Другой процесс уже оповестил: ключ кулдауна в общем Redis
    cache.add("alert-cooldown:health", 1, timeout=60)
    heartbeats.heartbeat_record(component=heartbeats.BEAT)
    assert watchdog_check() == health.DOWN
    assert _messages(notify_api) == []


def test_without_the_cache_alerts_keep_a_cooldown_of_their_own_and_recovery_is_reported(
    notify_api: FakeBotApi,
) -> None:
    # Redis лежит (кэш недоступен): сторож каждую минуту видит down — оповещение одно, не по разу в минуту
    dead = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    with override_settings(CACHES=dead):
        assert notify.alert_send(key="health", text="down: broker") is True
        assert notify.alert_send(key="health", text="down: broker") is False
        assert notify.alert_clear(key="health", text="ok again") is True
    assert _messages(notify_api) == ["down: broker", "ok again"]
