"""Место в очереди в статусе ждущего задания: периодическая задача правит его на месте.

Задания создаются в транзакции теста (публикации по коммиту нет — воркер их не возьмёт), правки
уходят через настоящий python-telegram-bot в подделку Bot API, и проверяется то, что она получила.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from botapp.generation import jobs, progress
from botapp.models import GenerationJob, TelegramUser
from botapp.tasks.maintenance import queue_status
from botapp.telegram import outbound
from botapp.tests.billing.factories import user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support.fakes import FakeBotApi, fake_bot_api

pytestmark = pytest.mark.django_db

BOT = {"id": 555000111, "is_bot": True, "first_name": "Nano", "username": "nano_bot"}


def _responder(method: str, params: dict[str, Any]) -> Any:
    """Ответ зависит только от запроса: правка возвращает правленое сообщение."""
    if method == "getMe":
        return BOT
    if method == "editMessageText":
        return {
            "message_id": int(params["message_id"]),
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": BOT,
            "text": params["text"],
        }
    return True


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    with fake_bot_api(_responder) as (base, api), override_settings(TELEGRAM_API_BASE_URL=base):
        outbound.bot_reset()
        yield api
        outbound.bot_reset()


def _waiting(message_id: int, *, age_s: float) -> GenerationJob:
    user = user_make(language="en")
    user_fund(user, 100)
    job = image_job_make(user, key=f"queue-{message_id}")
    GenerationJob.objects.filter(pk=job.pk).update(
        status_chat_id=user.telegram_id,
        status_message_id=message_id,
        created_at=timezone.now() - timedelta(seconds=age_s),
    )
    job.refresh_from_db()
    return job


def _edits(api: FakeBotApi) -> dict[int, dict[str, Any]]:
    """Правки по id сообщения (последняя на сообщение)."""
    return {int(p["message_id"]): p for method, p in api.calls if method == "editMessageText"}


def test_waiting_jobs_see_their_place_move_up_and_unchanged_places_are_not_edited(
    bot_api: FakeBotApi,
) -> None:
    first, second = _waiting(701, age_s=30), _waiting(702, age_s=20)
    fresh = _waiting(703, age_s=0)  # статус только что отправлен: место в нём ещё верное
    cache.delete_many([f"job-queue-shown:{job.pk}" for job in (first, second, fresh)])

    queue_status()

    edits = _edits(bot_api)
    assert sorted(edits) == [701, 702]
    assert "position 1," in edits[701]["text"]
    assert "position 2," in edits[702]["text"]
    assert int(edits[702]["chat_id"]) == second.status_chat_id
    # Кнопка отмены остаётся под статусом
    assert json.loads(edits[702]["reply_markup"])["inline_keyboard"][0][0]["callback_data"] == (
        f"job:x:{second.pk}"
    )

    # Первое задание отменено: второе поднимается на первое место, а третье (уже не свежее) — на второе
    jobs.job_fail(job=first, category="cancelled", status="cancelled")
    GenerationJob.objects.filter(pk=fresh.pk).update(created_at=timezone.now() - timedelta(seconds=15))
    bot_api.calls.clear()

    assert progress.queue_refresh() == 2

    edits = _edits(bot_api)
    assert sorted(edits) == [702, 703]
    assert "position 1," in edits[702]["text"]
    assert "position 2," in edits[703]["text"]

    # Места не изменились — правок нет (Telegram ответил бы «message is not modified»)
    bot_api.calls.clear()
    assert progress.queue_refresh() == 0
    assert _edits(bot_api) == {}
    for job in (second, fresh):
        jobs.job_fail(job=job, category="test")


def test_one_pass_edits_at_most_a_batch_oldest_first(
    bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "QUEUE_REFRESH_BATCH", 2)
    waiting = [_waiting(800 + n, age_s=60 - n) for n in range(4)]
    cache.delete_many([f"job-queue-shown:{job.pk}" for job in waiting])

    assert progress.queue_refresh() == 2
    assert sorted(_edits(bot_api)) == [800, 801]

    bot_api.calls.clear()
    assert progress.queue_refresh() == 2
    assert sorted(_edits(bot_api)) == [802, 803]
    for job in waiting:
        jobs.job_fail(job=job, category="test")


def test_a_user_who_blocked_the_bot_gets_no_queue_edits(bot_api: FakeBotApi) -> None:
    job = _waiting(901, age_s=30)
    TelegramUser.objects.filter(pk=job.user_id).update(is_blocked=True)
    cache.delete(f"job-queue-shown:{job.pk}")

    assert progress.queue_refresh() == 0
    assert _edits(bot_api) == {}
    jobs.job_fail(job=job, category="test")
