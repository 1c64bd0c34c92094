"""/api/health: уровни ok / degraded / down по правилам ARCHITECTURE §7."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from kombu import Connection

from botapp.ops import health, heartbeats
from botapp.tests.support import processes
from botapp.tests.support.fakes import ApiError, fake_bot_api, hung_listener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def isolated_redis_prefix() -> Iterator[str]:
    """Отдельный префикс Redis: ни пульс общего воркера, ни его очереди сюда не попадут."""
    prefix = f"{settings.REDIS_KEY_PREFIX}iso{time.monotonic_ns()}:"
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"{prefix}cache"}}
    with override_settings(REDIS_KEY_PREFIX=prefix, CACHES=caches):
        yield prefix


def _healthy_baseline() -> None:
    heartbeats.heartbeat_record(component=heartbeats.WORKER)
    heartbeats.heartbeat_record(component=heartbeats.BEAT)


def _age(component: str, seconds: float) -> None:
    cache.set(f"heartbeat:{component}", {"at": time.time() - seconds}, timeout=600)


@pytest.mark.slow
def test_it_is_ok_with_a_live_worker_and_beat(
    client: Any, celery_worker_process: Any, celery_beat_process: Any
) -> None:
    response = client.get("/api/health")
    body = response.json()
    assert response.status_code == 200, body
    # В сообщении — только не прошедшие проверки: полный отчёт pytest обрезает
    failing = {name: check for name, check in body["checks"].items() if check["status"] != "ok"}
    assert body["status"] == "ok", failing
    assert body["checks"]["workers"]["heartbeat_age_s"] < settings.WORKER_HEARTBEAT_MAX_AGE_S
    assert set(body["checks"]) == {"database", "broker", "workers", "beat", "queues", "storage", "telegram"}
    assert all("latency_ms" in check for check in body["checks"].values())


def test_it_is_down_without_a_worker_heartbeat(client: Any, isolated_redis_prefix: str) -> None:
    heartbeats.heartbeat_record(component=heartbeats.BEAT)
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["status"] == "fail"


def test_it_is_down_with_a_stale_worker_heartbeat(client: Any, isolated_redis_prefix: str) -> None:
    _healthy_baseline()
    _age(heartbeats.WORKER, settings.WORKER_HEARTBEAT_MAX_AGE_S + 5)
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"


def test_it_is_degraded_when_the_beat_tick_is_old(client: Any, isolated_redis_prefix: str) -> None:
    _healthy_baseline()
    _age(heartbeats.BEAT, 2 * settings.BEAT_TICK_INTERVAL_S + 5)
    body = client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["beat"]["status"] == "warn"


def test_it_is_degraded_when_a_queue_is_past_its_sla(client: Any, isolated_redis_prefix: str) -> None:
    from config.celery import app

    _healthy_baseline()
    sla = settings.QUEUE_SLA_S["generation"]
    options = {"global_keyprefix": f"{isolated_redis_prefix}celery:"}
    with Connection(settings.REDIS_URL, transport_options=options) as conn:
        # Настоящее сообщение Celery, опубликованное давно (заголовок времени публикации)
        app.send_task(
            "maintenance.beat_tick", queue="generation", connection=conn,
            headers={"nb_published_at": time.time() - sla - 10},
        )  # fmt: skip
        body = client.get("/api/health").json()
    assert body["status"] == "degraded", body
    assert body["checks"]["queues"]["queues"]["generation"]["depth"] == 1
    assert "generation" in body["checks"]["queues"]["detail"]


def test_it_is_degraded_when_storage_fails(client: Any, isolated_redis_prefix: str, tmp_path: Path) -> None:
    _healthy_baseline()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("file where the media folder should be")
    with override_settings(MEDIA_ROOT=blocker / "media"):
        body = client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["storage"]["status"] == "fail"


def test_it_is_degraded_after_a_recent_webhook_error(client: Any, isolated_redis_prefix: str) -> None:
    _healthy_baseline()
    token = "123456789:TESTFakeTokenForHealthCheck_abcdefghij"  # pragma: allowlist secret

    def responder(method: str, params: dict[str, Any]) -> Any:
        return {
            "url": "https://bot.example.com/telegram/webhook/",
            "has_custom_certificate": False,
            "pending_update_count": 3,
            "last_error_date": int(time.time()) - 60,
            "last_error_message": "Connection timed out",
        }

    with fake_bot_api(responder) as (base, api), override_settings(
        TELEGRAM_SANDBOX=False, TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=base,
        PUBLIC_BASE_URL="https://bot.example.com",
    ):  # fmt: skip
        body = client.get("/api/health").json()
    assert body["status"] == "degraded", body
    check = body["checks"]["telegram"]
    assert check["status"] == "warn"
    assert check["url_matches"] is True
    assert check["pending_update_count"] == 3
    assert [method for method, _ in api.calls] == ["getWebhookInfo"]
    assert set(api.tokens) == {token}
    assert token not in str(body)


@pytest.mark.parametrize("telegram", ["hung", "revoked token"])
def test_an_unreadable_webhook_info_is_a_field_not_a_lower_level(
    client: Any, isolated_redis_prefix: str, telegram: str
) -> None:
    """§7: degraded — за ошибку вебхука, о которой сообщил Telegram; не узнали — поле отчёта."""
    _healthy_baseline()
    token = "123456789:TESTFakeTokenForHealthCheck_abcdefghij"  # pragma: allowlist secret
    with contextlib.ExitStack() as stack:
        if telegram == "hung":
            base = f"http://127.0.0.1:{stack.enter_context(hung_listener())}"
        else:
            base, _api = stack.enter_context(
                fake_bot_api(lambda method, params: ApiError(401, "Unauthorized"))
            )
        stack.enter_context(
            override_settings(TELEGRAM_SANDBOX=False, TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=base)
        )
        body = client.get("/api/health").json()
    check = body["checks"]["telegram"]
    assert check["status"] == ("timeout" if telegram == "hung" else "fail"), check
    assert body["status"] == "ok", body
    assert token not in str(body)


def test_the_live_endpoint_needs_no_dependencies(client: Any) -> None:
    assert client.get("/api/health/live").json() == {"status": "ok"}


@pytest.mark.slow
@pytest.mark.parametrize("dependency", ["database", "broker"])
def test_it_answers_down_within_a_second_when_a_dependency_hangs(dependency: str, logs_dir: Path) -> None:
    with hung_listener() as port:
        if dependency == "database":
            overrides = {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/test"}
        else:
            overrides = {"REDIS_URL": f"redis://127.0.0.1:{port}/15"}
        env = processes.django_env(**overrides)
        with processes.web_server(env, logs_dir / f"web-hung-{dependency}.log") as base:
            started = time.monotonic()
            response = httpx.get(f"{base}/api/health", timeout=10)
            elapsed = time.monotonic() - started
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "down"
    assert body["checks"][dependency]["status"] == "timeout"
    assert elapsed < 1.0
    assert str(port) not in response.text


def test_health_report_never_shows_hosts_or_secrets(client: Any, isolated_redis_prefix: str) -> None:
    _healthy_baseline()
    text = client.get("/api/health").content.decode()
    assert "127.0.0.1" not in text
    assert settings.SECRET_KEY not in text
    assert health.CHECK_BUDGET_S < 1


def test_while_one_thread_recomputes_others_get_the_previous_report(isolated_redis_prefix: str) -> None:
    import threading

    _healthy_baseline()
    first = health.health_report()
    health._cached = (time.monotonic() - 60, first)  # отчёт устарел
    entered, release = threading.Event(), threading.Event()
    original = health.CHECKS["database"]

    def slow_database() -> health.CheckResult:
        entered.set()
        release.wait(5)
        return original()

    health.CHECKS["database"] = slow_database
    try:
        worker = threading.Thread(target=health.health_report)
        worker.start()
        assert entered.wait(5)
        # Пересчёт идёт: не ждём его, а получаем прежний отчёт
        assert health.health_report() is first
        release.set()
        worker.join(5)
    finally:
        health.CHECKS["database"] = original
    assert health.health_report() is not first
