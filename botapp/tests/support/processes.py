"""Запуск процессов проекта боевыми командами (воркер, веб) для интеграционных тестов."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def service_command(dockerfile: str) -> list[str]:
    """Боевая команда сервиса — CMD его Dockerfile; программа — из venv тестов."""
    lines = (ROOT / dockerfile).read_text().splitlines()
    command: list[str] = json.loads(next(line[4:] for line in reversed(lines) if line.startswith("CMD [")))
    return [str(BIN / command[0]), *command[1:]]


WORKER_COMMAND = service_command("Dockerfile.worker")
BEAT_COMMAND = service_command("Dockerfile.beat")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    """Окружение подпроцесса: только то, что нужно, без переменных разработчика."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def django_env(**overrides: str) -> dict[str, str]:
    """Окружение, указывающее подпроцесс на ту же тестовую БД и тот же префикс Redis."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    values = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        # Папка данных процесса тестов (у каждого процесса pytest-xdist своя)
        "DATA_DIR": str(settings.DATA_DIR),
    }
    return base_env(**{**values, **overrides})


@contextmanager
def running(command: list[str], env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Процесс в своей группе; по выходе — SIGTERM, затем SIGKILL всей группе."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop_group(proc, signal.SIGTERM, timeout=15)


def stop_group(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Дети (пул prefork) могли пережить главный процесс
    deadline = time.monotonic() + 5
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """Есть ли в группе живой процесс. Зомби не в счёт: осиротевших детей убитого воркера init
    контейнера забирает не сразу (здесь ~1 с), а kill(pgid, 0) считает их живыми."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Имя процесса в скобках может содержать пробелы: поля — после последней «)»
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def children(pid: int) -> list[int]:
    """Прямые дочерние процессы (пул prefork воркера); пусто — процесс ушёл или детей нет."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def wait_for(predicate: object, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def http_ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


@contextmanager
def web_server(env: Mapping[str, str], log: Path, port: int | None = None) -> Iterator[str]:
    """ASGI-приложение проекта под uvicorn на свободном (или заданном) порту; отдаёт базовый URL."""
    port = port or free_port()
    command = [
        str(BIN / "uvicorn"),
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        # Как у боевого web (gunicorn --keep-alive 75): по умолчанию uvicorn закрывает простаивающее
        # соединение через 5 с, и залп из заранее открытых соединений на медленной машине получал
        # «Connection reset by peer» (тест лимитера «500 чатов» в полном прогоне)
        "--timeout-keep-alive",
        "75",
    ]
    with running(command, env, log):
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ready(f"{base}/api/health/live"), timeout=30, what="web server")
        yield base


def migrate(env: Mapping[str, str]) -> None:
    """`manage.py migrate` подпроцессом с окружением стенда (своя база — например, файл SQLite)."""
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=dict(env),
        check=True,
        timeout=300,
    )


def shell_report(env: Mapping[str, str], code: str) -> Any:
    """`manage.py shell -c code` с окружением стенда; code печатает строку `REPORT <json>` — вернуть её JSON.

    Так сервис выполняется, как его выполнил бы beat или воркер: с префиксом Redis и БД стенда.
    """
    import json

    done = subprocess.run(
        [str(BIN / "python"), "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [line] = [row for row in done.stdout.splitlines() if row.startswith("REPORT ")]
    return json.loads(line.removeprefix("REPORT "))


@contextmanager
def bot_api_of(base: str) -> Iterator[None]:
    """Вызовы Bot API из процесса теста (как у воркера: доставка, возврат, сверка) — в эмулятор base."""
    from django.test import override_settings

    from botapp.telegram import outbound

    with override_settings(TELEGRAM_API_BASE_URL=f"{base}/sandbox/api"):
        outbound.bot_reset()
        try:
            yield
        finally:
            outbound.bot_reset()
