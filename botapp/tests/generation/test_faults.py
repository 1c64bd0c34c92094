"""Сбои вокруг задания: гибель воркера, капризный провайдер, 429 и блокировка в Telegram, отмена.

Стенд свой: веб (песочница) и локальный Gemini — на модуль, воркер — на тест, потому что тесты
его убивают и перезапускают. После каждого теста сверка денег (автофикстура корневого conftest),
а сам тест проверяет, что ни одно задание не осталось без исхода.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from botapp.billing import ledger
from botapp.generation.sweeper import DELIVERY_GRACE_S
from botapp.models import GenerationJob, JobStatus, LedgerTransaction, TelegramUser
from botapp.models.generation import TERMINAL_STATUSES
from botapp.sandbox import services
from botapp.sandbox.models import SandboxCall, SandboxFailure, SandboxMessage
from botapp.tests.generation.conftest import stack_env
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support import dblock, processes
from botapp.tests.support.fake_gemini import FakeGemini, render_png
from botapp.tests.support.processes import wait_for
from botapp.tests.telegram.test_chat_paths import Chat
from botapp.tests.telegram.test_chat_paths import current_button as _button

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Дольше любого тайм-аута вызова в этих тестах: [hang] молчит, пока клиент не сдастся
HANG_S = 60


@dataclass
class Rig:
    """Веб + подделка Gemini + воркеры, которые тест запускает, убивает и перезапускает сам."""

    base: str
    gemini: FakeGemini
    env: dict[str, str]
    log: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def worker(self) -> subprocess.Popen[bytes]:
        return self.workers[-1]

    def worker_start(self) -> subprocess.Popen[bytes]:
        """Воркер боевой командой; возвращается, когда он готов брать задачи."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                processes.WORKER_COMMAND,
                cwd=processes.ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(proc)
        wait_for(lambda: " ready." in self._log_since(offset), timeout=60, what="worker ready")
        return proc

    def worker_stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        processes.stop_group(self.worker, sig, timeout=timeout)

    def stop_all(self) -> None:
        # Конец теста: все задания уже завершены, тёплая остановка только тратила бы время
        for proc in self.workers:
            processes.stop_group(proc, signal.SIGKILL, timeout=5)
        self.workers.clear()

    def pool_children(self) -> list[int]:
        return processes.children(self.worker.pid)

    def _log_since(self, offset: int) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def sweep(self, **overrides: Any) -> dict[str, int]:
        """Сборщик в отдельном процессе с окружением стенда: публикует с его префиксом Redis."""
        code = (
            "import dataclasses, json\n"
            "from django.test import override_settings\n"
            "from botapp.generation.sweeper import jobs_sweep\n"
            f"with override_settings(**json.loads({json.dumps(json.dumps(overrides))})):\n"
            "    print('REPORT ' + json.dumps(dataclasses.asdict(jobs_sweep())))\n"
        )
        report: dict[str, int] = processes.shell_report(self.env, code)
        return report

    def control(self, command: str, queue: str) -> None:
        """Удалённое управление воркером (add_consumer / cancel_consumer) с префиксом стенда."""
        # Адресат указан: ответ одного узла завершает ожидание, не ждём весь тайм-аут
        node = f"celery@{socket.gethostname()}"
        celery = [str(processes.BIN / "celery"), "-A", "config", "control"]
        subprocess.run(
            [*celery, command, queue, "--destination", node, "--timeout", "10"],
            cwd=processes.ROOT,
            env=self.env,
            capture_output=True,
            timeout=60,
            check=True,
        )


@pytest.fixture(scope="module")
def rig_module(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
) -> Iterator[Rig]:
    data_dir = tmp_path_factory.mktemp("faults-data")
    port = processes.free_port()
    prefix = f"nbfault:{uuid.uuid4().hex[:8]}:"
    with FakeGemini(hang_s=HANG_S) as gemini:
        env = stack_env(gemini, data_dir, port, prefix)
        with (
            django_db_blocker.unblock(),
            processes.web_server(env, logs_dir / "faults-web.log", port=port) as base,
        ):
            yield Rig(base=base, gemini=gemini, env=env, log=logs_dir / "faults-worker.log")


@pytest.fixture
def rig(rig_module: Rig, transactional_db: Any) -> Iterator[Rig]:
    """Стенд без воркера: тест запускает его сам (или берёт фикстуру worker)."""
    rig_module.gemini.clear()
    yield rig_module
    rig_module.stop_all()


@pytest.fixture
def worker(rig: Rig) -> subprocess.Popen[bytes]:
    return rig.worker_start()


# --- чат и задания --------------------------------------------------------------------------------


def _user(chat: Chat) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=chat.chat_id)


def _balance(chat: Chat) -> tuple[int, int]:
    account = ledger.account_for(_user(chat))
    return account.available, account.on_hold


def _order(rig: Rig, prompt: str, *, chat: Chat | None = None, funds: int = 0) -> tuple[Chat, SandboxMessage]:
    """Пользователь пишет промпт и жмёт «Сгенерировать»; возвращает чат и сообщение статуса."""
    chat = chat or Chat(rig.base, "en")
    chat.say("/start")
    if funds:
        from botapp.tests.billing.factories import user_fund

        user_fund(_user(chat), funds)
    [card] = chat.say(prompt)
    chat.press(card, _button(card, "gen:ok:"))
    return chat, chat.bot_messages()[-1]


def _job(chat: Chat) -> GenerationJob:
    job = GenerationJob.objects.filter(user=_user(chat)).order_by("-pk").first()
    assert job is not None
    return job


def _wait_status(chat: Chat, *statuses: str, timeout: float = 60) -> GenerationJob:
    def reached() -> bool:
        job = _job(chat)
        if job.status not in statuses:
            return False
        # О неудаче пользователь должен узнать: ждём и сообщение
        return job.status not in (JobStatus.FAILED, JobStatus.EXPIRED) or job.notified_at is not None

    wait_for(reached, timeout=timeout, what=f"job {statuses}")
    return _job(chat)


def _wait_provider_calls(rig: Rig, endpoint: str, count: int, timeout: float = 30) -> None:
    wait_for(lambda: len(rig.gemini.requests_to(endpoint)) >= count, timeout=timeout, what="provider call")


def _settlements(job: GenerationJob) -> list[str]:
    """Проводки урегулирования холда задания (capture/release) — должна быть ровно одна."""
    return list(
        LedgerTransaction.objects.filter(
            reference_type="botapp.hold", reference_id=str(job.hold_id), kind__in=("capture", "release")
        ).values_list("kind", flat=True)
    )


def _sent(chat: Chat, method: str) -> list[SandboxCall]:
    """Успешные вызовы Bot API в чат (неудачные, в том числе подставленные, не в счёт)."""
    return [call for call in services.sandbox_calls(method=method, chat_id=chat.chat_id) if call.ok]


def _assert_every_job_finished() -> None:
    unfinished = GenerationJob.objects.exclude(status__in=TERMINAL_STATUSES).values_list("pk", "status")
    assert not list(unfinished)


def _lease_expired(job: GenerationJob) -> bool:
    job.refresh_from_db()
    return job.lease_until is not None and job.lease_until < timezone.now()


def _pool_child_calling(rig: Rig, port: int) -> int:
    """Дочерний процесс пула, у которого открыт сокет к подделке Gemini (он и ждёт ответа)."""
    remote = f":{port:04X}"
    inodes = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if fields[2].endswith(remote):
            inodes.add(f"socket:[{fields[9]}]")
    for pid in rig.pool_children():
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    raise AssertionError("no pool child holds a connection to the provider")


def _run_job_finished(rig: Rig) -> bool:
    """Воркер последнего запуска выполнил generation.run_job (по его журналу)."""
    since_ready = rig.log.read_text(errors="replace").split(" ready.")[-1]
    return any("generation.run_job[" in line and "succeeded" in line for line in since_ready.splitlines())


def _gemini_port(rig: Rig) -> int:
    return int(rig.gemini.base_url.rsplit(":", 1)[1].split("/")[0])


def _db_sessions_killed(pids: list[int]) -> int:
    """Оборвать сеансы PostgreSQL этих процессов (как рестарт или failover базы для них); сколько было."""
    from django.db import connection

    db_port = f":{int(connection.settings_dict['PORT'] or 5432):04X}"
    ports = set()
    inodes = {}
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if fields[2].endswith(db_port):
            inodes[f"socket:[{fields[9]}]"] = int(fields[1].rsplit(":", 1)[1], 16)
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                port = inodes.get(os.readlink(fd))
            except OSError:
                continue
            if port is not None:
                ports.add(port)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND client_port = ANY(%s)",
            [sorted(ports)],
        )
        return int(cursor.fetchone()[0])


# --- гибель процессов -----------------------------------------------------------------------------


def test_a_pool_child_killed_at_the_provider_is_recovered_and_delivered_once(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat, _status = _order(rig, "a paper boat [slow:2]")
    _wait_provider_calls(rig, ":generateContent", 1)
    os.kill(_pool_child_calling(rig, _gemini_port(rig)), signal.SIGKILL)
    job = _job(chat)
    # Сообщение вернулось в очередь (reject_on_worker_lost), но аренда ещё держит задание:
    # после её истечения сборщик возвращает его в очередь
    wait_for(lambda: _lease_expired(job), timeout=30, what="lease expired")
    assert job.status == JobStatus.RUNNING
    assert rig.sweep()["recovered"] == 1
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert len(rig.gemini.requests_to(":generateContent")) == 2
    assert job.attempts == 2
    assert _settlements(job) == ["capture"]
    assert len(_sent(chat, "sendPhoto")) == 1
    assert _balance(chat) == (20 - 14, 0)
    _assert_every_job_finished()


def test_a_killed_worker_is_recovered_by_lease_and_sweeper_after_restart(rig: Rig) -> None:
    rig.worker_start()
    chat, _status = _order(rig, "a glass whale [slow:2]")
    _wait_provider_calls(rig, ":generateContent", 1)
    rig.worker_stop(signal.SIGKILL)
    job = _job(chat)
    assert job.status == JobStatus.RUNNING
    rig.worker_start()
    wait_for(lambda: _lease_expired(job), timeout=30, what="lease expired")
    # Без сборщика сообщение не вернётся: оно «в работе» у мёртвого воркера до visibility_timeout
    assert rig.sweep()["recovered"] == 1
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert len(rig.gemini.requests_to(":generateContent")) == 2
    assert _settlements(job) == ["capture"]
    assert len(_sent(chat, "sendPhoto")) == 1
    _assert_every_job_finished()


def test_sigterm_lets_the_running_job_finish_and_a_new_worker_delivers_it(rig: Rig) -> None:
    rig.worker_start()
    chat, _status = _order(rig, "a clock tower [slow:2]")
    _wait_provider_calls(rig, ":generateContent", 1)
    # Как docker stop: SIGTERM только главному процессу; тёплая остановка дожидается задачи
    os.kill(rig.worker.pid, signal.SIGTERM)
    rig.worker.wait(timeout=30)
    job = _job(chat)
    assert job.status in (JobStatus.GENERATED, JobStatus.DELIVERED, JobStatus.QUEUED)
    rig.worker_start()
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    assert _settlements(job) == ["capture"]
    assert len(_sent(chat, "sendPhoto")) == 1
    _assert_every_job_finished()


def test_a_worker_restart_during_video_polling_resumes_without_resubmitting(rig: Rig) -> None:
    rig.worker_start()
    chat = Chat(rig.base, "en")
    chat.say("/start")
    from botapp.tests.billing.factories import user_fund

    user_fund(_user(chat), 300)
    [menu] = chat.say("🎬 Video")
    chat.press(menu, "gen:m:video:veo-3-1-fast")
    [card] = chat.say("waves at sunset [polls:4]")
    chat.press(card, _button(card, "gen:ok:"))
    _wait_provider_calls(rig, "/operations/", 1)
    rig.worker_stop(signal.SIGKILL)
    job = _job(chat)
    assert job.status == JobStatus.RUNNING
    assert job.operation_name
    rig.worker_start()
    # Отложенный опрос умер вместе с воркером: сборщик видит просроченный next_poll_at
    wait_for(
        lambda: GenerationJob.objects.filter(
            pk=job.pk, next_poll_at__lt=timezone.now() - timedelta(seconds=1.5)
        ).exists(),
        timeout=30,
        what="poll overdue",
    )
    assert rig.sweep()["polls"] == 1
    job = _wait_status(chat, JobStatus.DELIVERED, timeout=90)
    assert len(rig.gemini.requests_to(":predictLongRunning")) == 1
    assert _settlements(job) == ["capture"]
    assert len(_sent(chat, "sendVideo")) == 1
    assert _balance(chat) == (320 - 120, 0)
    _assert_every_job_finished()


def test_a_database_connection_lost_at_the_provider_reconnects_and_does_not_order_again(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat, _status = _order(rig, "a stone lighthouse [slow:3]")
    _wait_provider_calls(rig, ":generateContent", 1)
    # Пока провайдер рисует, у воркера рвутся все соединения с базой (рестарт PostgreSQL, failover)
    assert _db_sessions_killed([worker.pid, *rig.pool_children()]) >= 1
    # Картинка оплачена провайдеру: воркер переподключается и записывает её, а не ждёт аренды и
    # сборщика, который заказал бы её снова
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    assert job.attempts == 1
    assert _settlements(job) == ["capture"]
    assert _balance(chat) == (20 - 14, 0)
    assert len(_sent(chat, "sendPhoto")) == 1
    # Тот же воркер берёт следующие задания, а не уходит в цикл падений
    assert worker.poll() is None
    second, _ = _order(rig, "a wooden lighthouse")
    assert _settlements(_wait_status(second, JobStatus.DELIVERED)) == ["capture"]
    assert len(rig.workers) == 1
    _assert_every_job_finished()


def test_a_database_connection_lost_while_telegram_takes_the_photo_does_not_send_it_twice(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    """Обрыв соединений воркера с БД, пока Telegram принимает фото: file_id записывается после
    переподключения, а не теряется — иначе повтор доставки прислал бы фото второй раз."""
    # «Telegram завис»: эмулятор, разбирая sendPhoto, ждёт блокировку строки подставленного сбоя
    failure = services.sandbox_inject_failure(method="sendPhoto", failure="server_error")
    table = SandboxFailure._meta.db_table
    with dblock.holding(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [failure.pk]) as holder:  # noqa: S608
        chat, _status = _order(rig, "a glass harbour")
        wait_for(dblock.awaited, timeout=30, what="sendPhoto waiting in the emulator")
        assert _db_sessions_killed([worker.pid, *rig.pool_children()]) >= 1
        # Сбой убран, блокировка снята: эмулятор принимает фото
        holder.execute(f"DELETE FROM {table} WHERE id = %s", [failure.pk])  # noqa: S608
        holder.commit()
    job = _wait_status(chat, JobStatus.DELIVERED, timeout=30)
    assert len(_sent(chat, "sendPhoto")) == 1
    assert _settlements(job) == ["capture"]
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    assert worker.poll() is None
    _assert_every_job_finished()


# --- провайдер -------------------------------------------------------------------------------------


def test_a_provider_that_stays_unavailable_fails_after_backoff_and_returns_the_tokens(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat, _status = _order(rig, "a desert road [503]")
    # Срок задания близко: повторы с паузой идут, пока следующая пауза не упрётся в срок
    GenerationJob.objects.filter(pk=_job(chat).pk).update(deadline=timezone.now() + timedelta(seconds=8))
    job = _wait_status(chat, JobStatus.FAILED)
    calls = rig.gemini.requests_to(":generateContent")
    assert len(calls) >= 2
    assert job.attempts == len(calls)
    assert job.error_category == "provider_unavailable"
    assert _settlements(job) == ["release"]
    assert _balance(chat) == (20, 0)
    assert "The tokens were returned to your balance." in chat.bot_messages()[-1].text
    _assert_every_job_finished()


def test_a_hanging_provider_times_out_and_returns_the_tokens(rig: Rig) -> None:
    worker = rig.worker_start()
    rig.control("cancel_consumer", "generation")
    chat, _status = _order(rig, "a silent forest [hang]")
    # Пока задание в очереди, его срок приближаем: тайм-аут вызова не длиннее остатка срока
    GenerationJob.objects.filter(pk=_job(chat).pk).update(deadline=timezone.now() + timedelta(seconds=8))
    rig.control("add_consumer", "generation")
    job = _wait_status(chat, JobStatus.FAILED, JobStatus.EXPIRED, timeout=30)
    assert job.status == JobStatus.FAILED
    assert job.error_category == "timeout"
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    assert _settlements(job) == ["release"]
    assert _balance(chat) == (20, 0)
    assert worker.poll() is None
    _assert_every_job_finished()


@pytest.mark.parametrize("keyword", ["[unsafe]", "[blocked]"])
def test_a_safety_refusal_returns_the_tokens_without_a_retry(
    rig: Rig, worker: subprocess.Popen[bytes], keyword: str
) -> None:
    chat, _status = _order(rig, f"something {keyword}")
    job = _wait_status(chat, JobStatus.FAILED)
    assert job.error_category == "safety"
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    assert job.attempts == 1
    assert _settlements(job) == ["release"]
    assert _balance(chat) == (20, 0)
    assert not _sent(chat, "sendPhoto")
    _assert_every_job_finished()


# --- Telegram при доставке -------------------------------------------------------------------------


def test_a_flood_limit_on_delivery_waits_retry_after_and_does_not_regenerate(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat = Chat(rig.base, "en")
    services.sandbox_inject_failure(method="sendPhoto", failure="flood", chat_id=chat.chat_id, retry_after=2)
    _order(rig, "a red kite", chat=chat)
    job = _wait_status(chat, JobStatus.DELIVERED)
    attempts = services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)
    assert [call.status for call in attempts] == [429, 200]
    assert (attempts[1].created_at - attempts[0].created_at).total_seconds() >= 2
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    assert _settlements(job) == ["capture"]
    assert _balance(chat) == (6, 0)
    _assert_every_job_finished()


def _refusing_photos(rig: Rig, description: str, *, times: int) -> Chat:
    """Новый чат, в который эмулятор отвечает 400 на первые times вызовов sendPhoto."""
    chat = Chat(rig.base, "en")
    services.sandbox_inject_failure(
        method="sendPhoto", chat_id=chat.chat_id, times=times, error_code=400, description=description
    )
    return chat


def test_a_photo_telegram_refuses_is_resent_once_as_a_jpeg_preview(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat = _refusing_photos(rig, "Bad Request: IMAGE_PROCESS_FAILED", times=1)
    _order(rig, "a paper boat", chat=chat)
    job = _wait_status(chat, JobStatus.DELIVERED)
    # JPEG может уйти и следующей попыткой доставки (лимит чата после отказа)
    refused, accepted = services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)
    assert (refused.status, accepted.status) == (400, 200)
    # Сначала — оригинал PNG как есть, затем — JPEG-превью (другой файл)
    output = job.outputs.get()
    assert refused.params["photo"]["size"] == output.size_bytes
    assert accepted.params["photo"]["size"] != output.size_bytes
    assert _settlements(job) == ["capture"]
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    _assert_every_job_finished()


def test_a_result_telegram_keeps_refusing_returns_the_tokens_without_endless_retries(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat = _refusing_photos(rig, "Bad Request: PHOTO_INVALID", times=5)
    _order(rig, "a glass bird", chat=chat)
    job = _wait_status(chat, JobStatus.FAILED)
    assert job.error_category == "delivery_rejected"
    assert _settlements(job) == ["release"]
    assert _balance(chat) == (20, 0)
    assert "Telegram did not accept the result" in chat.bot_messages()[-1].text
    # Оригинал и один повтор JPEG — и всё: 400 не ретраится
    assert len(services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)) == 2
    _assert_every_job_finished()


def test_a_user_who_blocked_the_bot_gets_the_tokens_back(rig: Rig, worker: subprocess.Popen[bytes]) -> None:
    chat = Chat(rig.base, "en")
    services.sandbox_inject_failure(method="sendPhoto", failure="blocked", chat_id=chat.chat_id)
    _order(rig, "a green door", chat=chat)
    job = _wait_status(chat, JobStatus.FAILED)
    assert job.error_category == "blocked"
    assert _settlements(job) == ["release"]
    assert _balance(chat) == (20, 0)
    assert _user(chat).is_blocked
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    _assert_every_job_finished()


# --- отмена ---------------------------------------------------------------------------------------


def test_cancel_while_queued_returns_the_tokens_and_the_provider_is_never_called(rig: Rig) -> None:
    rig.worker_start()
    rig.control("cancel_consumer", "generation")
    chat, status = _order(rig, "an orange moon")
    assert _balance(chat) == (6, 14)
    chat.press(status, _button(status, "job:x:"))
    job = _job(chat)
    assert job.status == JobStatus.CANCELLED
    assert _balance(chat) == (20, 0)
    assert _settlements(job) == ["release"]
    assert "Cancelled. The tokens were returned" in chat.bot_messages()[-1].text
    # Сообщение из очереди дойдёт до воркера и ничего не сделает
    rig.control("add_consumer", "generation")
    wait_for(lambda: _run_job_finished(rig), timeout=30, what="queued message consumed")
    assert not rig.gemini.requests
    _assert_every_job_finished()


def test_cancel_after_the_provider_started_is_refused_and_the_result_is_charged(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat = Chat(rig.base, "en")
    chat.say("/start")
    [card] = chat.say("a violet lamp [slow:2]")
    chat.press(card, _button(card, "gen:ok:"))
    status = chat.bot_messages()[-1]
    # Нажатие сделано, пока кнопка видна; до бота доходит, когда провайдер уже работает
    press = services.sandbox_user_press_button(
        chat_id=chat.chat_id, message_id=status.message_id, callback_data=_button(status, "job:x:")
    )
    _wait_provider_calls(rig, ":generateContent", 1)
    chat.deliver(press)
    assert _job(chat).status == JobStatus.RUNNING
    answer = services.sandbox_calls(method="answerCallbackQuery")[-1]
    assert "already started" in str(answer.params.get("text"))
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert job.charged == 14
    assert _settlements(job) == ["capture"]
    assert len(_sent(chat, "sendPhoto")) == 1
    assert _balance(chat) == (6, 0)
    _assert_every_job_finished()


def test_a_live_worker_keeps_its_lease_between_outputs(rig: Rig, worker: subprocess.Popen[bytes]) -> None:
    chat = Chat(rig.base, "en")
    chat.say("/start")
    from botapp.tests.billing.factories import user_fund

    user_fund(_user(chat), 50)
    [card] = chat.say("two lanterns [slow:4]")
    chat.press(card, _button(card, "gen:c:count:"))  # 2 картинки: вместе дольше аренды
    chat.press(card, _button(card, "gen:ok:"))
    _wait_provider_calls(rig, ":generateContent", 2)
    job = _job(chat)
    assert job.started_at is not None
    lease_s = int(rig.env["GENERATION_LEASE_S"])
    wait_for(lambda: timezone.now() > job.started_at + timedelta(seconds=lease_s + 0.5), timeout=30)
    # Воркер жив и работает над вторым выходом: сборщик не должен отдать задание другому
    assert rig.sweep()["recovered"] == 0
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert len(rig.gemini.requests_to(":generateContent")) == 2
    assert _settlements(job) == ["capture"]
    _assert_every_job_finished()


@pytest.mark.django_db
def test_a_cancel_right_after_the_claim_keeps_the_provider_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import override_settings

    from botapp.generation import jobs, runner
    from botapp.providers.storage import media_storage
    from botapp.tests.billing.factories import user_fund, user_make

    user = user_make()
    user_fund(user, 100)
    # Окно «захвачено, провайдер не начал» есть у правки: сначала загружаются входные фото
    # (без них захват сразу отмечает старт провайдера — отменять нечего)
    media_storage().put(
        kind="image", key="jobs/race/0.png", data=render_png(64, 48, "harbour"), content_type="image/png"
    )
    # Без transaction=True публикация по коммиту не происходит: задание ведёт только этот тест
    job = image_job_make(user, key="race", prompt="a quiet harbour", refs=["out:jobs/race/0.png"])
    claim = jobs.job_claim

    def claim_then_cancel(*, job_id: int) -> GenerationJob | str:
        # Пользователь жмёт ✖️ в тот миг, когда воркер уже захватил задание, но провайдер не начал
        claimed = claim(job_id=job_id)
        assert jobs.job_cancel(job_id=job_id, user=user) == "cancelled"
        return claimed

    monkeypatch.setattr(jobs, "job_claim", claim_then_cancel)
    with (
        FakeGemini() as gemini,
        override_settings(
            GEMINI_OFFLINE=False, GEMINI_API_KEY=gemini.api_key, GEMINI_API_BASE_URL=gemini.base_url
        ),
    ):
        runner.job_run(job_id=job.pk)
        assert not gemini.requests
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert _settlements(job) == ["release"]


def test_a_delivery_retry_lost_with_the_worker_is_republished_by_the_sweeper(rig: Rig) -> None:
    rig.worker_start()
    chat = Chat(rig.base, "en")
    # Окно «аренда ещё держит» — retry_after + DELIVERY_GRACE_S от отказа; под нагрузкой (xdist) убийство
    # воркера и сборщик в подпроцессе занимают секунды
    services.sandbox_inject_failure(method="sendPhoto", failure="flood", chat_id=chat.chat_id, retry_after=8)
    _order(rig, "a brass key", chat=chat)
    wait_for(lambda: services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id), timeout=30)
    # Повтор доставки ждёт своего часа в памяти воркера — и гибнет вместе с ним
    rig.worker_stop(signal.SIGKILL)
    job = _job(chat)
    assert job.status == JobStatus.GENERATED
    # До срока повтора аренда доставки за ним: сборщик копию не публикует
    assert rig.sweep()["deliveries"] == 0
    rig.worker_start()
    wait_for(
        lambda: GenerationJob.objects.filter(
            pk=job.pk, lease_until__lt=timezone.now() - timedelta(seconds=DELIVERY_GRACE_S)
        ).exists(),
        timeout=30,
        what="the delivery lease lapsed",
    )
    assert rig.sweep()["deliveries"] == 1
    job = _wait_status(chat, JobStatus.DELIVERED)
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    assert len(_sent(chat, "sendPhoto")) == 1
    assert _settlements(job) == ["capture"]
    _assert_every_job_finished()


def test_a_user_who_blocks_the_bot_after_the_photo_arrived_pays_for_the_photo(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat = Chat(rig.base, "en")
    # Фото дошло, а оригинал файлом — уже 403: результат у пользователя, возврата быть не должно
    services.sandbox_inject_failure(method="sendDocument", failure="blocked", chat_id=chat.chat_id)
    _order(rig, "a silver spoon", chat=chat)
    job = _wait_status(chat, JobStatus.DELIVERED, JobStatus.FAILED)
    assert job.status == JobStatus.DELIVERED
    assert job.charged == 14
    assert _settlements(job) == ["capture"]
    assert _balance(chat) == (6, 0)
    assert len(_sent(chat, "sendPhoto")) == 1
    assert not _sent(chat, "sendDocument")
    assert _user(chat).is_blocked
    assert not any("tokens were returned" in (m.text or "") for m in chat.bot_messages())
    _assert_every_job_finished()


def test_a_delivery_telegram_keeps_failing_gives_up_and_returns_the_tokens(
    rig: Rig, worker: subprocess.Popen[bytes]
) -> None:
    chat = Chat(rig.base, "en")
    # 502 на каждую отправку фото: NetworkError, доставка повторяется раз в 5 с
    services.sandbox_inject_failure(
        method="sendPhoto", failure="server_error", chat_id=chat.chat_id, times=1000
    )
    _order(rig, "an iron gate", chat=chat)
    wait_for(lambda: services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id), timeout=30)
    job = _job(chat)
    assert job.status == JobStatus.GENERATED
    # Результат ждёт дольше предела доставки (час): следующая попытка сдаётся
    GenerationJob.objects.filter(pk=job.pk).update(generated_at=timezone.now() - timedelta(hours=2))
    job = _wait_status(chat, JobStatus.FAILED, JobStatus.DELIVERED, timeout=30)
    assert (job.status, job.error_category) == (JobStatus.FAILED, "delivery_failed")
    assert _settlements(job) == ["release"]
    assert _balance(chat) == (20, 0)
    assert "The tokens were returned to your balance." in chat.bot_messages()[-1].text
    attempts = len(services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id))
    # Повторов больше нет, и сборщику публиковать нечего
    assert rig.sweep()["deliveries"] == 0
    assert len(services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)) == attempts
    assert len(rig.gemini.requests_to(":generateContent")) == 1
    _assert_every_job_finished()
