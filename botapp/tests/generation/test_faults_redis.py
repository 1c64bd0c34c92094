"""Брокер теряет сообщения: свой redis-server перезапускается посреди работы, база помнит задания."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botapp.models import ErrorEvent, ErrorGroup, JobStatus
from botapp.sandbox import services
from botapp.tests.generation.conftest import stack_env
from botapp.tests.generation.test_faults import (
    Rig,
    _assert_every_job_finished,
    _balance,
    _job,
    _order,
    _sent,
    _settlements,
    _wait_provider_calls,
    _wait_status,
)
from botapp.tests.support import processes
from botapp.tests.support.fake_gemini import FakeGemini
from botapp.tests.support.redis_server import RedisServer, redis_server
from botapp.tests.telegram.test_chat_paths import Chat
from botapp.tests.telegram.test_chat_paths import current_button as _button

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("faults-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def redis_rig_module(
    django_db_setup: Any,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    logs_dir: Path,
    broker: RedisServer,
) -> Iterator[Rig]:
    data_dir = tmp_path_factory.mktemp("faults-redis-data")
    port = processes.free_port()
    prefix = f"nbfault:{uuid.uuid4().hex[:8]}:"
    with FakeGemini() as gemini:
        # Один процесс пула: второе задание ждёт в брокере, пока первое у провайдера
        env = stack_env(gemini, data_dir, port, prefix, REDIS_URL=broker.url, CELERY_WORKER_CONCURRENCY="1")
        with (
            django_db_blocker.unblock(),
            processes.web_server(env, logs_dir / "faults-redis-web.log", port=port) as base,
        ):
            yield Rig(base=base, gemini=gemini, env=env, log=logs_dir / "faults-redis-worker.log")


@pytest.fixture
def redis_rig(redis_rig_module: Rig, transactional_db: Any) -> Iterator[Rig]:
    redis_rig_module.gemini.clear()
    yield redis_rig_module
    redis_rig_module.stop_all()


def test_a_broker_restart_loses_messages_and_the_sweeper_republishes_them(
    redis_rig: Rig, broker: RedisServer
) -> None:
    rig = redis_rig
    rig.worker_start()
    first, _ = _order(rig, "a stone bridge [slow:3]")
    _wait_provider_calls(rig, ":generateContent", 1)
    second, _ = _order(rig, "a wooden bridge")
    assert _job(second).status == JobStatus.QUEUED
    # Redis без персистентности падает и поднимается: сообщение второго задания потеряно
    broker.restart()
    # Первое задание воркер доделывает сам: доставка публикуется уже в новый Redis
    _wait_status(first, JobStatus.DELIVERED)
    assert _job(second).status == JobStatus.QUEUED
    report = rig.sweep(GENERATION_QUEUE_REPUBLISH_S=1)
    assert report["republished"] == 1
    for chat in (first, second):
        job = _wait_status(chat, JobStatus.DELIVERED)
        assert _settlements(job) == ["capture"]
        assert len(_sent(chat, "sendPhoto")) == 1
    assert len(rig.gemini.requests_to(":generateContent")) == 2
    _assert_every_job_finished()


def test_a_job_ordered_while_the_broker_is_down_is_published_by_the_sweeper(
    redis_rig: Rig, broker: RedisServer
) -> None:
    rig = redis_rig
    rig.worker_start()
    chat = Chat(rig.base, "en")
    chat.say("/start")
    [card] = chat.say("a lonely pier")
    broker.kill()
    try:
        # Холд и задание в базе, публикация по коммиту падает: вебхук всё равно отвечает 200
        chat.press(card, _button(card, "gen:ok:"))
    finally:
        broker.start()
    job = _job(chat)
    assert job.status == JobStatus.QUEUED
    assert _balance(chat) == (6, 14)
    assert rig.sweep(GENERATION_QUEUE_REPUBLISH_S=0)["republished"] == 1
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert _settlements(job) == ["capture"]
    assert len(_sent(chat, "sendPhoto")) == 1
    _assert_every_job_finished()


def test_while_redis_is_down_the_bot_still_answers_in_the_chat(redis_rig: Rig, broker: RedisServer) -> None:
    chat = Chat(redis_rig.base, "en")
    chat.say("/start")
    broker.kill()
    try:
        # Redis — общий лимитер отправки и кэш; без него ответы не должны пропадать молча
        replies = chat.say("/balance")
    finally:
        broker.start()
    assert replies
    assert replies[0].text.startswith("💰 Available: 20 tokens")
    assert not any((m.text or "").startswith("Sorry, something went wrong") for m in chat.bot_messages())
    assert not ErrorEvent.objects.exists()


def test_a_handler_error_with_redis_down_still_gets_an_apology(redis_rig: Rig, broker: RedisServer) -> None:
    chat = Chat(redis_rig.base, "en")
    chat.say("/start")
    # Ответ на /help падает (400 от Telegram): новая критичная группа ошибок шлёт оповещение, а его
    # кулдаун — в кэше Redis, который лежит. Извинение и событие ошибки не должны от этого пропасть
    services.sandbox_inject_failure(
        method="sendMessage", chat_id=chat.chat_id, error_code=400, description="Bad Request: injected"
    )
    broker.kill()
    try:
        chat.say("/help")
    finally:
        broker.start()
    assert chat.bot_messages()[-1].text.startswith("Sorry, something went wrong")
    group = ErrorGroup.objects.get(source="telegram.handler")
    assert group.title == "BadRequest: Injected"
