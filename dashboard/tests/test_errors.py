"""Раздел «Ошибки»: группы по отпечатку, фильтры, стек без секретов, смена статуса с аудитом, оповещение."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from botapp.models import ErrorEvent, ErrorGroup, StaffAuditLog
from botapp.ops.errors import error_is_critical, error_record
from botapp.tests.admin.conftest import verified_client
from botapp.tests.support.fakes import FakeBotApi, fake_bot_api, fake_bot_token

pytestmark = pytest.mark.django_db

BOT_TOKEN = fake_bot_token()


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("olga", password="pw", is_staff=True)  # pragma: allowlist secret


@pytest.fixture
def client_staff(staff: User) -> Client:
    return verified_client(staff)


def _group(title: str, *, source: str = "task", status: str = "new", ago_min: int = 0) -> ErrorGroup:
    group = ErrorGroup.objects.create(
        fingerprint=title.ljust(32, "0")[:32], title=title, source=source, status=status
    )
    ErrorGroup.objects.filter(pk=group.pk).update(last_seen=timezone.now() - timedelta(minutes=ago_min))
    return group


def _raise(message: str, *, source: str, context: dict[str, Any] | None = None) -> ErrorGroup:
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        return error_record(source=source, exc=exc, context=context)


def test_groups_are_listed_newest_first_with_counts(client_staff: Client) -> None:
    _group("Старая ошибка", ago_min=60)
    _group("Свежая ошибка", ago_min=1)
    _raise("boom", source="task")
    _raise("boom", source="task")
    html = client_staff.get("/dashboard/errors/").content.decode()
    assert html.index("RuntimeError: boom") < html.index("Свежая ошибка") < html.index("Старая ошибка")
    assert "<td>2</td>" in html


def test_filters_by_status_and_source(client_staff: Client) -> None:
    _group("Новая в задаче", source="task")
    _group("Решённая в задаче", source="task", status="resolved")
    _group("Новая в сверке", source="billing.reconcile")
    page = client_staff.get("/dashboard/errors/", {"status": "new", "source": "task"})
    titles = [group.title for group in page.context["page"]]
    assert titles == ["Новая в задаче"]


def test_the_group_page_redacts_the_stack_and_context_again(client_staff: Client) -> None:
    group = _group("Утечка")
    # Событие, записанное в обход error_record (например, до новых правил редакции)
    ErrorEvent.objects.create(
        group=group,
        stack=f"Traceback: https://api.telegram.org/bot{BOT_TOKEN}/sendMessage failed",
        context={"url": f"bot{BOT_TOKEN}", "key": "AIza" + "x" * 35, "update_id": 77},
    )
    html = client_staff.get(f"/dashboard/errors/{group.pk}/").content.decode()
    assert "update_id" in html
    assert "sendMessage failed" in html
    assert BOT_TOKEN not in html
    assert "AIza" not in html


def test_staff_change_the_status_and_it_is_audited(client_staff: Client, staff: User) -> None:
    group = _group("В работу")
    response = client_staff.post(f"/dashboard/errors/{group.pk}/status/", {"status": "in_progress"})
    assert response.status_code == 302
    group.refresh_from_db()
    assert group.status == ErrorGroup.Status.IN_PROGRESS
    audit = StaffAuditLog.objects.get(action="error_group.status")
    assert audit.actor == staff
    assert audit.details == {"from": "new", "to": "in_progress"}
    assert audit.target_id == str(group.pk)


def test_an_unknown_status_changes_nothing(client_staff: Client) -> None:
    group = _group("Как есть")
    client_staff.post(f"/dashboard/errors/{group.pk}/status/", {"status": "deleted"})
    group.refresh_from_db()
    assert group.status == ErrorGroup.Status.NEW
    assert not StaffAuditLog.objects.exists()


def test_the_status_change_needs_post_and_a_csrf_token(staff: User) -> None:
    group = _group("CSRF")
    client = verified_client(staff)
    client.handler.enforce_csrf_checks = True
    assert client.get(f"/dashboard/errors/{group.pk}/status/").status_code == 405
    assert client.post(f"/dashboard/errors/{group.pk}/status/", {"status": "resolved"}).status_code == 403
    group.refresh_from_db()
    assert group.status == ErrorGroup.Status.NEW


def test_non_staff_cannot_change_the_status() -> None:
    group = _group("Чужая")
    user = User.objects.create_user("visitor", password="pw")  # pragma: allowlist secret
    client = Client()
    client.force_login(user)
    response = client.post(f"/dashboard/errors/{group.pk}/status/", {"status": "resolved"})
    assert response.status_code == 302
    group.refresh_from_db()
    assert group.status == ErrorGroup.Status.NEW


# --- Оповещение о новой критичной группе


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
    prefix = f"{settings.REDIS_KEY_PREFIX}err{time.monotonic_ns()}:"
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"{prefix}cache"}}
    with fake_bot_api(_responder) as (base, api), override_settings(
        CACHES=caches, TELEGRAM_API_BASE_URL=base,
        TELEGRAM_NOTIFY_TOKEN="987654321:TESTNotifyTokenForErrorTests_abcdefgh",  # pragma: allowlist secret
        TELEGRAM_NOTIFY_CHAT_ID="-1001234567890",
    ):  # fmt: skip
        yield api


def _alerts(api: FakeBotApi) -> list[str]:
    return [params["text"] for method, params in api.calls if method == "sendMessage"]


def test_critical_sources_are_billing_handlers_and_generation() -> None:
    assert error_is_critical("billing.reconcile")
    assert error_is_critical("telegram.handler")
    assert error_is_critical("generation")
    assert not error_is_critical("task")
    assert not error_is_critical("billingual")


@pytest.mark.django_db(transaction=True)
def test_a_new_critical_group_alerts_once(notify_api: FakeBotApi) -> None:
    for _ in range(3):
        group = _raise("ledger broken", source="billing.reconcile")
    sent = _alerts(notify_api)
    assert len(sent) == 1
    assert "billing.reconcile" in sent[0]
    assert f"/dashboard/errors/{group.pk}/" in sent[0]


@pytest.mark.django_db(transaction=True)
def test_a_non_critical_group_does_not_alert(notify_api: FakeBotApi) -> None:
    _raise("minor", source="task")
    assert _alerts(notify_api) == []


@pytest.mark.django_db(transaction=True)
def test_the_alert_cooldown_is_shared_through_the_cache(notify_api: FakeBotApi) -> None:
    from django.core.cache import cache

    from botapp.ops.errors import error_fingerprint

    try:
        raise RuntimeError("twice")
    except RuntimeError as exc:
        fingerprint = error_fingerprint(source="generation", exc=exc)
        # Другой процесс уже оповестил по этому отпечатку
        cache.add(f"alert-cooldown:error-new:{fingerprint}", 1, timeout=60)
        error_record(source="generation", exc=exc)
    assert _alerts(notify_api) == []
