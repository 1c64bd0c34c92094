"""Воркер с пулом нитей (CELERY_WORKER_POOL=threads) — раскладка для очереди video_poll.

Один процесс вместо главного и дочерних: Bot и цикл событий у каждой нити свои (threading.local),
соединения с БД — тоже. Тест — что в такой раскладке видео и картинки идут одновременно,
ни одно задание не уходит провайдеру дважды и каждое списывается ровно раз.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botapp.billing.reconcile import reconcile_ledger
from botapp.models import GenerationJob, JobStatus
from botapp.sandbox import services
from botapp.tests.billing.factories import user_fund
from botapp.tests.generation.conftest import Stack, generation_stack
from botapp.tests.generation.test_end_to_end import _generate, _user
from botapp.tests.generation.test_faults import _settlements
from botapp.tests.support import processes
from botapp.tests.support.processes import wait_for
from botapp.tests.telegram.test_chat_paths import Chat
from botapp.tests.telegram.test_chat_paths import current_button as _button

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
) -> Iterator[Stack]:
    with generation_stack(
        django_db_blocker,
        tmp_path_factory,
        logs_dir,
        "threads-pool",
        CELERY_WORKER_POOL="threads",
        CELERY_WORKER_CONCURRENCY="2",
    ) as built:
        yield built


def test_a_threads_pool_worker_runs_videos_and_images_together_charged_once(stack: Stack) -> None:
    # Пул нитей: у воркера нет дочерних процессов
    assert processes.children(stack.worker.pid) == []
    videos, images = [Chat(stack.base, "en") for _ in range(3)], [Chat(stack.base, "en") for _ in range(2)]
    for chat in (*videos, *images):
        chat.say("/start")
    for chat in videos:
        user_fund(_user(chat), 300)
        [menu] = chat.say("🎬 Video")
        chat.press(menu, "gen:m:video:veo-3-1-fast")
        [card] = chat.say("waves at sunset [after:3]")
        chat.press(card, _button(card, "gen:ok:"))
    for chat in images:
        card = _generate(chat, "a patient fox [slow:2]")
        chat.press(card, _button(card, "gen:ok:"))
    chats = (*videos, *images)
    wait_for(
        lambda: (
            GenerationJob.objects.filter(
                user__telegram_id__in=[c.chat_id for c in chats], status=JobStatus.DELIVERED
            ).count()
            == len(chats)
        ),
        timeout=90,
        what="five jobs delivered",
    )
    assert len(stack.gemini.requests_to(":predictLongRunning")) == 3
    assert len(stack.gemini.requests_to(":generateContent")) == 2
    jobs = list(GenerationJob.objects.filter(user__telegram_id__in=[c.chat_id for c in chats]))
    for job in jobs:
        assert _settlements(job) == ["capture"]
    for chat in videos:
        assert len([c for c in services.sandbox_calls(method="sendVideo", chat_id=chat.chat_id) if c.ok]) == 1
    for chat in images:
        assert len([c for c in services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id) if c.ok]) == 1
    # Две нити действительно работали одновременно: интервалы «старт → результат» пересекаются
    spans = sorted((job.started_at, job.generated_at) for job in jobs if job.started_at and job.generated_at)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    assert reconcile_ledger().ok
