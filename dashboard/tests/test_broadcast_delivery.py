"""Доставка рассылки целиком: веб (песочница Telegram) + воркер Celery боевой командой, лимиты по умолчанию.

Стенд свой, с отдельным REDIS_KEY_PREFIX: воркеры других стендов не забирают его задачи, а лимитер
отправителя и лимиты эмулятора не делят состояние с соседями. Персонал действует через HTTP панели
(вход паролем и кодом TOTP), как в браузере; эмулятор отвечает 429 при превышении 30/с и 1/с на чат.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db.models import F
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image

from botapp.models import TelegramUser
from botapp.sandbox import services as sandbox
from botapp.sandbox.models import SandboxCall
from botapp.tests.support import processes
from botapp.tests.support.processes import wait_for
from dashboard.models import Broadcast, BroadcastRecipient, StaffProfile
from dashboard.services import broadcasts as service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AUDIENCE = 300
KILL_AT = 100
FIRST_ID = 8_100_000_000


@dataclass
class Stack:
    """Веб-песочница и воркеры, которые тест убивает и запускает снова."""

    base: str
    env: dict[str, str]
    log: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def worker_start(self) -> None:
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

    def worker_signal(self, sig: int) -> None:
        os.killpg(self.workers[-1].pid, sig)

    def worker_kill(self) -> None:
        processes.stop_group(self.workers[-1], signal.SIGKILL, timeout=5)

    def worker_alive(self) -> bool:
        return bool(self.workers) and self.workers[-1].poll() is None

    def tick(self) -> dict[str, int]:
        """Периодическая задача так, как её выполнил бы beat: отдельный процесс с окружением стенда."""
        code = (
            "import dataclasses, json\n"
            "from dashboard.services.broadcasts import broadcasts_tick\n"
            "print('REPORT ' + json.dumps(dataclasses.asdict(broadcasts_tick())))\n"
        )
        report: dict[str, int] = processes.shell_report(self.env, code)
        return report

    def _log_since(self, offset: int) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


@pytest.fixture(scope="module")
def stack_module(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("broadcast-data")
    port = processes.free_port()
    prefix = f"nbcast:{uuid.uuid4().hex[:8]}:"
    env = processes.django_env(
        TELEGRAM_SANDBOX="true",
        PORT=str(port),
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{port}/sandbox/api",
        DATA_DIR=str(data_dir),
        REDIS_KEY_PREFIX=prefix,
    )
    # Лимиты Telegram — по умолчанию (30/с на бота, 1/с на чат): ни стенд, ни тест их не ослабляют
    assert not {"TELEGRAM_RATE_OVERALL", "TELEGRAM_RATE_PER_CHAT"} & set(env)
    assert (settings.TELEGRAM_RATE_OVERALL, settings.TELEGRAM_RATE_PER_CHAT) == (30, 1)
    with (
        django_db_blocker.unblock(),
        processes.web_server(env, logs_dir / "broadcast-web.log", port=port) as base,
    ):
        stack = Stack(base=base, env=env, log=logs_dir / "broadcast-worker.log")
        try:
            yield stack
        finally:
            for proc in stack.workers:
                processes.stop_group(proc, signal.SIGKILL, timeout=5)


@pytest.fixture
def stack(stack_module: Stack, transactional_db: Any) -> Stack:
    if not stack_module.worker_alive():
        stack_module.worker_start()
    return stack_module


# --- персонал в браузере ------------------------------------------------------------------------------


def _staff(telegram_id: int | None = None) -> tuple[User, TOTPDevice]:
    user = User.objects.create_user(
        "vera", password="correct horse", is_staff=True
    )  # pragma: allowlist secret
    user.user_permissions.add(Permission.objects.get(codename="send_broadcast"))
    if telegram_id is not None:
        StaffProfile.objects.create(user=user, telegram_id=telegram_id)
    return user, TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "form carries a CSRF token"
    return match.group(1)


def _browser(stack: Stack, device: TOTPDevice) -> httpx.Client:
    """Сессия сотрудника в панели: пароль + код TOTP, как в браузере."""
    client = httpx.Client(base_url=stack.base, timeout=30)
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    form = {"username": "vera", "password": "correct horse", "otp_token": code}  # pragma: allowlist secret
    form["csrfmiddlewaretoken"] = _csrf(client.get("/dashboard/login/").text)
    assert client.post("/dashboard/login/", data=form).status_code == 302
    return client


def _press(client: httpx.Client, broadcast: Broadcast, action: str) -> None:
    page = client.get(f"/dashboard/broadcasts/{broadcast.pk}/").text
    response = client.post(
        f"/dashboard/broadcasts/{broadcast.pk}/{action}/", data={"csrfmiddlewaretoken": _csrf(page)}
    )
    assert response.status_code == 302


def _progress(client: httpx.Client, broadcast: Broadcast) -> dict[str, Any]:
    progress: dict[str, Any] = client.get(f"/dashboard/broadcasts/{broadcast.pk}/progress/").json()
    return progress


def _audience(count: int, first_id: int = FIRST_ID) -> list[int]:
    """Пользователи и в эмуляторе Telegram (их чаты), и в нашей БД — с теми же id."""
    ids = [first_id + n for n in range(count)]
    for telegram_id in ids:
        sandbox.sandbox_user_get_or_create(user_id=telegram_id, first_name=f"U{telegram_id}")
    TelegramUser.objects.bulk_create(
        [
            TelegramUser(telegram_id=telegram_id, first_name=f"U{telegram_id}", language_code="ru")
            for telegram_id in ids
        ]
    )
    return ids


def _calls(marker: str, method: str = "sendMessage") -> list[SandboxCall]:
    return [call for call in sandbox.sandbox_calls(method=method) if marker in json.dumps(call.params)]


# --- тесты ---------------------------------------------------------------------------------------------


def test_photo_button_blocked_user_and_send_to_me_first(stack: Stack) -> None:
    ids = _audience(3)
    me = 8_199_999_999
    sandbox.sandbox_user_get_or_create(user_id=me, first_name="Вера")
    _user, device = _staff(telegram_id=me)
    sandbox.sandbox_inject_failure(method="sendPhoto", failure=sandbox.Failure.BLOCKED, chat_id=ids[1])
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(picture, format="PNG")
    marker = uuid.uuid4().hex[:8]
    browser = _browser(stack, device)

    # Форма с фото и кнопкой, «Сначала прислать мне» отмечено (фото уходит в хранилище веб-процесса)
    form = {
        "text": f"<b>Скидка</b> {marker}",
        "audience": "ids",
        "ids_text": " ".join(map(str, ids)),
        "button_text": "Открыть",
        "button_url": "https://example.com/sale",
        "send_to_me": "on",
        "csrfmiddlewaretoken": _csrf(browser.get("/dashboard/broadcasts/new/").text),
    }
    response = browser.post(
        "/dashboard/broadcasts/new/",
        data=form,
        files={"photo": ("sale.png", picture.getvalue(), "image/png")},
    )
    assert response.status_code == 302, response.text[-2000:]
    broadcast = Broadcast.objects.get(pk=int(response.headers["location"].rstrip("/").rsplit("/", 1)[1]))
    [preview] = _calls(marker, "sendPhoto")
    assert preview.chat_id == me
    assert preview.ok

    _press(browser, broadcast, "launch")
    wait_for(lambda: _progress(browser, broadcast)["status"] == "done", timeout=30, what="broadcast done")
    assert _progress(browser, broadcast) | {"status": "done"} == {
        "status": "done", "total": 3, "pending": 0, "sent": 2, "blocked": 1, "failed": 0
    }  # fmt: skip
    assert TelegramUser.objects.get(telegram_id=ids[1]).is_blocked
    calls = _calls(marker, "sendPhoto")
    assert [c.status for c in calls if c.chat_id == ids[1]] == [403]
    for call in calls:
        markup = call.params["reply_markup"]
        keyboard = (json.loads(markup) if isinstance(markup, str) else markup)["inline_keyboard"]
        assert keyboard == [[{"text": "Открыть", "url": "https://example.com/sale"}]]
    # Фото загружено один раз; дальше — по file_id, который запомнила рассылка
    file_id = Broadcast.objects.get(pk=broadcast.pk).photo_file_id
    assert file_id
    assert [c.params["photo"] for c in calls if c.ok][1:] == [file_id] * 2
    sent = BroadcastRecipient.objects.filter(broadcast=broadcast, status="sent")
    assert all(r.message_id and r.sent_at for r in sent)


def _acked_but_unmarked(broadcast: Broadcast, marker: str) -> set[int]:
    """Чаты, где Telegram уже принял сообщение, а отметка sent ещё не записана (окно «ответ → отметка»)."""
    acked = {call.chat_id for call in _calls(marker) if call.ok}
    marked = set(
        BroadcastRecipient.objects.filter(broadcast=broadcast, status="sent").values_list(
            "user__telegram_id", flat=True
        )
    )
    return {chat for chat in acked - marked if chat is not None}


def _kill_between_messages(stack: Stack, broadcast: Broadcast, marker: str) -> None:
    """SIGKILL посреди пачки, но не в окне «Telegram ответил → sent записан».

    В этом окне (миллисекунды) гибель воркера по документированному контракту может повторить одно
    сообщение; тест проверяет остальное обещание — «никому дважды» — поэтому воркер сначала
    замораживается (SIGSTOP), и если он застыл как раз в окне, ему дают сделать шаг и замораживают снова.
    """
    for _attempt in range(50):
        stack.worker_signal(signal.SIGSTOP)
        time.sleep(0.5)  # запросы, уже ушедшие в эмулятор, успевают записаться
        if not _acked_but_unmarked(broadcast, marker):
            stack.worker_kill()
            return
        stack.worker_signal(signal.SIGCONT)
        time.sleep(0.03)
    raise AssertionError("could not freeze the worker outside the ack → mark window")


def _time_passes(broadcast: Broadcast, seconds: float) -> None:
    """Сдвинуть все отметки времени рассылки в прошлое: аренды погибшего воркера истекли."""
    shift = timedelta(seconds=seconds)
    recipients = BroadcastRecipient.objects.filter(broadcast=broadcast)
    recipients.filter(lease_until__isnull=False).update(lease_until=F("lease_until") - shift)
    recipients.filter(sent_at__isnull=False).update(sent_at=F("sent_at") - shift)
    Broadcast.objects.filter(pk=broadcast.pk).update(started_at=F("started_at") - shift)


def test_300_users_at_default_rates_survive_a_worker_kill_and_nobody_gets_it_twice(stack: Stack) -> None:
    ids = _audience(AUDIENCE)
    staff, device = _staff()
    marker = uuid.uuid4().hex[:8]
    broadcast = service.broadcast_create(staff=staff, text=f"<i>Новости</i> {marker}", audience="all")
    browser = _browser(stack, device)

    started = time.monotonic()
    _press(browser, broadcast, "launch")
    wait_for(
        lambda: _progress(browser, broadcast)["sent"] >= KILL_AT, timeout=30, interval=0.1, what="~100 sent"
    )
    _kill_between_messages(stack, broadcast, marker)
    before_kill = _progress(browser, broadcast)
    first_phase_s = time.monotonic() - started
    assert KILL_AT <= before_kill["sent"] < AUDIENCE, before_kill
    leased = BroadcastRecipient.objects.filter(
        broadcast=broadcast, status="pending", lease_until__isnull=False
    )
    assert leased.exists(), "the worker died holding a claimed batch"

    # Перезапуск: новый воркер, аренды погибшего истекли, периодическая задача поднимает цепочки
    stack.worker_start()
    _time_passes(broadcast, service.SEND_LEASE_S + 1)
    assert stack.tick()["revived"] == 1
    wait_for(lambda: _progress(browser, broadcast)["status"] == "done", timeout=40, what="broadcast done")
    total_s = time.monotonic() - started

    final = _progress(browser, broadcast)
    assert final == {
        "status": "done",
        "total": AUDIENCE,
        "pending": 0,
        "sent": AUDIENCE,
        "blocked": 0,
        "failed": 0,
    }
    calls = _calls(marker)
    statuses = Counter(call.status for call in sandbox.sandbox_calls())
    assert statuses[429] == 0, [
        (c.method, c.chat_id, c.created_at, c.error) for c in sandbox.sandbox_calls() if c.status == 429
    ]
    per_chat = Counter(call.chat_id for call in calls)
    assert set(per_chat) == set(ids)
    assert set(per_chat.values()) == {1}, [chat for chat, n in per_chat.items() if n > 1]
    times = sorted(call.created_at for call in calls[: before_kill["sent"]])
    rate = (len(times) - 1) / max((times[-1] - times[0]).total_seconds(), 1e-6)
    print(
        "BROADCAST "
        + json.dumps(
            {
                "recipients": AUDIENCE,
                "sent_before_kill": before_kill["sent"],
                "sends_per_s_before_kill": round(rate, 1),
                "first_phase_s": round(first_phase_s, 1),
                "total_s": round(total_s, 1),
                "http_429": statuses[429],
                "calls_by_status": dict(statuses),
            }
        )
    )
