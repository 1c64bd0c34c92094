"""Общие фикстуры: воркер и beat Celery боевыми командами на тестовой БД и Redis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botapp.tests.support import processes
from botapp.tests.support.fake_supabase import FakeSupabase, fake_service_key


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("process-logs")


def _dump_log(log: Path) -> None:
    if log.exists():
        print(f"--- {log.name} (tail) ---\n" + log.read_text(errors="replace")[-4000:])


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup: Any, django_db_blocker: Any, logs_dir: Path) -> Iterator[Any]:
    """`celery -A config worker` как в production, на Redis и тестовой PostgreSQL.

    На модуль, а не на сессию: живой воркер слушает префикс Redis процесса тестов и забрал бы задания,
    которые тесты следующих файлов публикуют, не ожидая исполнителя (порядок файлов у pytest-xdist свой).
    """
    from botapp.ops import heartbeats

    log = logs_dir / "worker.log"
    with (
        django_db_blocker.unblock(),
        processes.running(processes.WORKER_COMMAND, processes.django_env(), log) as proc,
    ):
        try:
            processes.wait_for(
                lambda: heartbeats.heartbeat_age(component=heartbeats.WORKER) is not None,
                timeout=60,
                what="worker heartbeat",
            )
        except AssertionError:
            _dump_log(log)
            raise
        yield proc
    _dump_log(log) if proc.returncode not in (0, -15, None) else None


@pytest.fixture(scope="module")
def celery_beat_process(django_db_setup: Any, django_db_blocker: Any, logs_dir: Path) -> Iterator[Any]:
    """`celery -A config beat` с DatabaseScheduler, как в production."""
    from botapp.ops import heartbeats

    log = logs_dir / "beat.log"
    with (
        django_db_blocker.unblock(),
        processes.running(processes.BEAT_COMMAND, processes.django_env(), log) as proc,
    ):
        try:
            processes.wait_for(
                lambda: heartbeats.heartbeat_age(component=heartbeats.BEAT) is not None,
                timeout=60,
                what="beat tick",
            )
        except AssertionError:
            _dump_log(log)
            raise
        yield proc


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Тестовая база pytest-django; перед её удалением — закрыть чужие сеансы в ней.

    Соединения потоков пула `db()` во встроенных серверах (CONN_MAX_AGE вне ASGI) живут до конца
    процесса, и DROP DATABASE pytest-django падал с «is being accessed by other users», оставляя базу.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session", autouse=True)
def _migration_data_after_flush() -> Iterator[None]:
    """Каталог, пакеты и системные счета миграции 0004 — снова после каждой очистки базы.

    Транзакционный тест стирает базу командой flush, а она, как и migrate, шлёт post_migrate. Так
    эти данные есть в начале любого теста, в каком бы порядке тесты ни шли (у процессов
    pytest-xdist порядок свой).
    """
    from django.apps import apps
    from django.db.models.signals import post_migrate

    from botapp.tests.billing.factories import billing_seed

    def reseed(**kwargs: Any) -> None:
        billing_seed()

    sender = apps.get_app_config("botapp")
    post_migrate.connect(reseed, sender=sender, weak=False, dispatch_uid="tests-billing-seed")
    yield
    post_migrate.disconnect(sender=sender, dispatch_uid="tests-billing-seed")


@pytest.fixture
def jobs_unpublished(monkeypatch: pytest.MonkeyPatch) -> None:
    """Новые задания не уходят в брокер: их берут только процессы самого теста.

    Воркер того же префикса Redis, живой в это время (фикстура модуля, стенд), иначе взял бы задание
    первым, а в брокере после теста не остаётся сообщений о заданиях стёртой базы.
    """
    from botapp.generation import jobs

    monkeypatch.setattr(jobs, "job_publish", lambda job_id, **kwargs: None)


@pytest.fixture(autouse=True)
def _fresh_health_cache() -> Iterator[None]:
    from botapp.ops import health

    health.health_cache_reset()
    yield
    health.health_cache_reset()


def _same_db_fixture(request: pytest.FixtureRequest) -> bool:
    """Подключить ту же фикстуру БД, что у теста: наш teardown выполнится раньше её отката."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return False
    transactional = marker.kwargs.get("transaction", False) or (marker.args and marker.args[0])
    request.getfixturevalue("transactional_db" if transactional else "db")
    return True


@pytest.fixture(autouse=True)
def _no_emulator_violations(request: pytest.FixtureRequest) -> Iterator[None]:
    """Любой отказ эмулятора (кроме внедрённого тестом) за время теста — ошибка бота: тест падает.

    Журнал эмулятора — в тестовой БД, в каком бы процессе эмулятор ни работал (клиент Django,
    живая песочница, сервер в режиме песочницы, стенды генерации и lava, эмуляторы лимитера),
    а без БД его не запустить — поэтому проверяется каждый тест с БД. Серверы песочницы живут
    дольше теста, и откат их записи не стирает: считаются только вызовы этого теста. Тесты самого
    эмулятора, которые нарочно шлют неверные вызовы, помечены `emulator_violations_expected`.
    """
    expected = request.node.get_closest_marker("emulator_violations_expected") is not None
    tolerated = request.node.get_closest_marker("emulator_tolerates")
    allowed = tuple(tolerated.args) if tolerated is not None else ()
    if expected or not _same_db_fixture(request):
        yield
        return
    from botapp.sandbox.models import SandboxCall

    since = SandboxCall.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    yield
    violations: list[tuple[object, ...]] = []
    blocked_chats: Counter[int | None] = Counter()
    for call in SandboxCall.objects.filter(pk__gt=since, status__gte=400, injected=False).order_by("pk"):
        # 403 «bot was blocked by the user» — поступок пользователя песочницы; ошибка бота — слать туда снова
        if call.status == 403 and call.error.startswith("Forbidden: bot was blocked"):
            blocked_chats[call.chat_id] += 1
        elif allowed and call.error.startswith(allowed):
            # Ответ Telegram на гонку, которую тест создаёт нарочно (двойное нажатие), — не ошибка бота
            continue
        else:
            violations.append((call.method, call.status, call.error))
    violations += [
        ("sent again to a chat that blocked the bot", chat, n) for chat, n in blocked_chats.items() if n > 1
    ]
    assert violations == [], f"the emulator rejected the bot's calls: {violations}"


@pytest.fixture(autouse=True)
def _money_invariants(request: pytest.FixtureRequest) -> Iterator[None]:
    """После каждого теста с БД сверка денег обязана проходить (ARCHITECTURE §4)."""
    if not _same_db_fixture(request):
        yield
        return
    yield
    from botapp.billing.reconcile import reconcile_ledger

    report = reconcile_ledger()
    assert report.ok, report.summary()


@pytest.fixture
def supabase(settings: Any) -> Iterator[FakeSupabase]:
    """Локальный Supabase Storage как хранилище результатов процесса теста (генерация, панель)."""
    key = fake_service_key()
    with FakeSupabase(key) as fake:
        fake.serve_media(settings)
        yield fake
