"""Аренда доставки держится, пока результат читается из хранилища: сборщик не шлёт вторую копию.

Доставка — в процессе теста (как у воркера), Bot API — эмулятор сервера песочницы, хранилище —
локальный Supabase, который отвечает медленнее срока аренды.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from botapp.generation import delivery
from botapp.models import GenerationJob, TelegramUser
from botapp.sandbox import services
from botapp.tests.billing.factories import user_fund
from botapp.tests.sandbox.conftest import sandbox_bot_api, sandbox_mode_server  # noqa: F401 — общие фикстуры
from botapp.tests.support.fake_supabase import FakeSupabase
from botapp.tests.telegram.test_chat_paths import Chat
from botapp.tests.telegram.test_result_captions import _generated_video

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _lease_left_while(job_id: int, running: threading.Event, samples: list[timedelta]) -> None:
    """Каждые 0,1 с — сколько осталось аренде доставки (своё соединение, как у сборщика)."""
    try:
        while running.is_set():
            lease = GenerationJob.objects.values_list("lease_until", flat=True).get(pk=job_id)
            if lease is not None:
                samples.append(lease - timezone.now())
            running.wait(0.1)
    finally:
        connection.close()


def test_a_slow_read_from_storage_keeps_the_delivery_lease(
    sandbox_bot_api: str,  # noqa: F811 — фикстура
    supabase: FakeSupabase,
    settings: Any,
) -> None:
    # Продление каждую треть аренды (1 с): запас на паузы потоков на занятой машине (прогон xdist)
    settings.DELIVERY_LEASE_S = 3.0
    chat = Chat(sandbox_bot_api, "en")
    chat.say("/start")
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    user_fund(user, 500)
    job = _generated_video(user)  # переход в GENERATED взял аренду на 3 с
    supabase.slow_next(5.0)  # чтение ролика дольше аренды
    running, samples = threading.Event(), list[timedelta]()
    running.set()
    sampler = threading.Thread(target=_lease_left_while, args=(job.pk, running, samples))
    sampler.start()
    try:
        assert delivery.job_deliver(job_id=job.pk, claimed=True).outcome == "delivered"
    finally:
        running.clear()
        sampler.join()
    assert len(samples) >= 20
    # Всё чтение аренда впереди: сборщик не счёл бы доставщика умершим
    assert min(samples) > timedelta(0), min(samples)
    assert len(services.sandbox_calls(method="sendVideo", chat_id=chat.chat_id)) == 1
