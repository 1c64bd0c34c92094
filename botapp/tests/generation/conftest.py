"""Стенд генерации: веб (песочница) + воркер Celery боевой командой + локальный Gemini, свой префикс Redis.

Свой префикс нужен, чтобы воркер общей сессии (с другим окружением) не забирал задачи этого стенда.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botapp.tests.support import processes
from botapp.tests.support.fake_gemini import FakeGemini


@dataclass
class Stack:
    base: str
    gemini: FakeGemini
    data_dir: Path
    worker: Any
    env: dict[str, str]


def stack_env(gemini: FakeGemini, data_dir: Path, port: int, prefix: str, **extra: str) -> dict[str, str]:
    return processes.django_env(
        TELEGRAM_SANDBOX="true",
        PORT=str(port),
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{port}/sandbox/api",
        GEMINI_API_KEY=gemini.api_key,
        GEMINI_API_BASE_URL=gemini.base_url,
        GEMINI_OFFLINE="false",
        DATA_DIR=str(data_dir),
        REDIS_KEY_PREFIX=prefix,
        GENERATION_LEASE_S="6",
        VIDEO_POLL_INTERVAL_S="1",
        **extra,
    )


@contextlib.contextmanager
def generation_stack(
    django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path, name: str, **extra: str
) -> Iterator[Stack]:
    """Веб + воркер боевой командой + локальный Gemini; extra — отличия окружения (пул воркера)."""
    data_dir = tmp_path_factory.mktemp(f"{name}-data")
    port = processes.free_port()
    prefix = f"nbgen:{uuid.uuid4().hex[:8]}:"
    with FakeGemini(hang_s=20) as gemini:
        env = stack_env(gemini, data_dir, port, prefix, **extra)
        with (
            django_db_blocker.unblock(),
            processes.web_server(env, logs_dir / f"{name}-web.log", port=port) as base,
            processes.running(processes.WORKER_COMMAND, env, logs_dir / f"{name}-worker.log") as worker,
        ):
            time.sleep(1)
            yield Stack(base=base, gemini=gemini, data_dir=data_dir, worker=worker, env=env)


@pytest.fixture(scope="module")
def stack(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
) -> Iterator[Stack]:
    with generation_stack(django_db_blocker, tmp_path_factory, logs_dir, "generation") as built:
        yield built


@pytest.fixture(autouse=True)
def _transactional_and_clean(request: pytest.FixtureRequest) -> None:
    """Стенд — другие процессы: данные теста закоммичены; журнал подделки Gemini — с чистого листа."""
    if "stack" in request.fixturenames:
        request.getfixturevalue("transactional_db")
        request.getfixturevalue("stack").gemini.clear()


@pytest.fixture
def gemini(settings: Any) -> Iterator[FakeGemini]:
    """Локальный Gemini для стадии генерации в процессе теста (runner без воркера)."""
    with FakeGemini() as fake:
        settings.GEMINI_OFFLINE = False
        settings.GEMINI_API_KEY = fake.api_key
        settings.GEMINI_API_BASE_URL = fake.base_url
        yield fake
