"""Фикстуры песочницы: клиент Django для эмулятора и живой uvicorn для настоящего PTB."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.test import Client
from telegram import Bot

from botapp.sandbox import ratelimit
from botapp.tests.support import processes

T = TypeVar("T")
SETTINGS_MODULE = "config.settings.test"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> Iterator[None]:
    """Режим песочницы; лимиты частоты не мешают тестам про другое (тесты лимитов задают свои)."""
    settings.TELEGRAM_SANDBOX = True
    settings.TELEGRAM_RATE_OVERALL = 1000.0
    settings.TELEGRAM_RATE_PER_CHAT = 1000.0
    settings.TELEGRAM_RATE_PER_GROUP = 60000.0
    ratelimit.reset()
    yield
    ratelimit.reset()


def png(width: int = 2, height: int = 1, padding: int = 0) -> bytes:
    """PNG с нужными размерами в заголовке (пиксели не важны) и хвостом для объёма."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"tEXt", b"pad\x00" + b"x" * padding) + chunk(b"IEND", b"")


def new_chat_id() -> int:
    return 5_000_000_000 + secrets.randbelow(1_000_000_000)


@dataclass
class ApiReply:
    status: int
    body: dict[str, Any]

    @property
    def result(self) -> Any:
        assert self.status == 200, self.body
        return self.body["result"]

    @property
    def description(self) -> str:
        return str(self.body.get("description", ""))


class SandboxApi:
    """Вызовы эмулятора через тестовый клиент Django (без сети): form, multipart или JSON."""

    def __init__(self, client: Client, token: str) -> None:
        self.client = client
        self.token = token

    def url(self, method: str, token: str | None = None) -> str:
        return f"/sandbox/api/bot{token or self.token}/{method}"

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        as_json: bool = False,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        token: str | None = None,
    ) -> ApiReply:
        url = self.url(method, token)
        if as_json:
            response = self.client.post(url, data=json.dumps(params or {}), content_type="application/json")
        elif files:
            from django.core.files.uploadedfile import SimpleUploadedFile

            data: dict[str, Any] = form(params or {})
            for name, (filename, content, mime) in files.items():
                data[name] = SimpleUploadedFile(filename, content, content_type=mime)
            response = self.client.post(url, data=data)
        else:
            body = urlencode(form(params or {}))
            response = self.client.post(url, data=body, content_type="application/x-www-form-urlencoded")
        return ApiReply(response.status_code, response.json())


def form(params: dict[str, Any]) -> dict[str, str]:
    """Как кодирует PTB: сложные поля — JSON-строкой, булевы — true/false."""
    encoded: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        elif isinstance(value, list | dict):
            encoded[key] = json.dumps(value)
        else:
            encoded[key] = str(value)
    return encoded


@pytest.fixture
def api(db: Any) -> SandboxApi:
    return SandboxApi(Client(), django_settings.TELEGRAM_BOT_TOKEN)


# --- живой сервер ---


@dataclass
class LiveSandbox:
    base: str

    def bot(self, token: str | None = None) -> Bot:
        return Bot(
            token or django_settings.TELEGRAM_BOT_TOKEN,
            base_url=f"{self.base}/sandbox/api/bot",
            base_file_url=f"{self.base}/sandbox/api/file/bot",
        )

    def run(self, scenario: Callable[[Bot], Awaitable[T]]) -> T:
        """Сценарий с настоящим PTB-клиентом (initialize → getMe), в своём цикле событий."""

        async def main() -> T:
            async with self.bot() as bot:
                return await scenario(bot)

        return asyncio.run(main())


def _live(logs_dir: Path, name: str, **rates: str) -> Iterator[LiveSandbox]:
    env = processes.django_env(DJANGO_SETTINGS_MODULE=SETTINGS_MODULE, TELEGRAM_SANDBOX="true", **rates)
    with processes.web_server(env, logs_dir / f"{name}.log") as base:
        yield LiveSandbox(base)


@pytest.fixture(scope="session")
def live_sandbox(django_db_setup: Any, django_db_blocker: Any, logs_dir: Path) -> Iterator[LiveSandbox]:
    """uvicorn с ASGI-приложением проекта; лимиты подняты, чтобы не мешать сценариям."""
    with django_db_blocker.unblock():
        yield from _live(
            logs_dir,
            "sandbox-web",
            TELEGRAM_RATE_OVERALL="1000",
            TELEGRAM_RATE_PER_CHAT="1000",
            TELEGRAM_RATE_PER_GROUP="60000",
        )


@pytest.fixture(scope="session")
def strict_sandbox(django_db_setup: Any, django_db_blocker: Any, logs_dir: Path) -> Iterator[LiveSandbox]:
    """Тот же сервер с тесными лимитами: 10 сообщений/с всего, 1/с в чат."""
    with django_db_blocker.unblock():
        yield from _live(
            logs_dir,
            "sandbox-web-strict",
            TELEGRAM_RATE_OVERALL="10",
            TELEGRAM_RATE_PER_CHAT="1",
            TELEGRAM_RATE_PER_GROUP="20",
        )


@pytest.fixture(scope="session")
def sandbox_mode_server(django_db_setup: Any, django_db_blocker: Any, logs_dir: Path) -> Iterator[str]:
    """Как `make run` без токена: бот ходит в эмулятор на своём же порту (PORT → TELEGRAM_API_BASE_URL)."""
    port = processes.free_port()
    env = processes.django_env(
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE, TELEGRAM_SANDBOX="true", PORT=str(port)
    )
    with (
        django_db_blocker.unblock(),
        processes.web_server(env, logs_dir / "sandbox-e2e.log", port=port) as base,
    ):
        yield base


@pytest.fixture
def sandbox_bot_api(sandbox_mode_server: str) -> Iterator[str]:
    """Вызовы Bot API из процесса теста (как у воркера: доставка, возврат, сверка) — в эмулятор сервера."""
    with processes.bot_api_of(sandbox_mode_server):
        yield sandbox_mode_server
