"""Входящий ящик: копия во время обработки — 200 сразу и без повторной обработки; старые строки удаляются."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from botapp.models import InboxUpdate
from botapp.sandbox import services
from botapp.telegram.inbox import inbox_prune
from botapp.tests.telegram.test_chat_paths import Chat, _post

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_copy_arriving_while_the_first_is_processed_gets_200_at_once(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    update = services.sandbox_user_send_text(chat_id=chat.chat_id, text="/help")
    # Первая копия «ещё обрабатывается» другим процессом: строка захвачена, аренда свежая
    InboxUpdate.objects.create(
        update_id=update["update_id"],
        update_type="message",
        status=InboxUpdate.Status.PROCESSING,
        lease_until=timezone.now() + timedelta(seconds=30),
    )
    started = time.monotonic()
    assert _post(sandbox_mode_server, update) == 200
    assert time.monotonic() - started < 2.0  # не ждёт первую копию
    assert services.sandbox_calls(chat_id=chat.chat_id) == []  # и не обрабатывает второй раз
    row = InboxUpdate.objects.get(update_id=update["update_id"])
    assert (row.status, row.attempts) == (InboxUpdate.Status.PROCESSING, 1)


def test_rows_older_than_48_hours_are_pruned() -> None:
    now = timezone.now()
    for update_id, age in ((1, timedelta(hours=49)), (2, timedelta(hours=47))):
        InboxUpdate.objects.create(
            update_id=update_id, update_type="message", status=InboxUpdate.Status.DONE, lease_until=now
        )
        InboxUpdate.objects.filter(update_id=update_id).update(received_at=now - age)
    assert inbox_prune() == 1
    assert list(InboxUpdate.objects.values_list("update_id", flat=True)) == [2]
