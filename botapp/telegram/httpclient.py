"""Лёгкий HTTP/1.1-клиент Bot API для веба: запросы без файлов — сам, через потоки asyncio; с файлами — httpx.

Почему: в профиле вебхука httpx + httpcore + anyio занимали ~40 % CPU процесса (сборка Request и
Response, куки, проверка всех соединений пула перед каждым запросом, слои anyio), больше, чем вся
работа с БД. Вызов Bot API без файлов — одна форма x-www-form-urlencoded и ответ JSON; для него
хватает keep-alive соединений и разбора статуса, Content-Length и chunked. Ошибки — те же, что у
HTTPXRequest: TimedOut и NetworkError. Повторов нет (как и у httpx): упавший запрос поднимается в PTB.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

_Key = tuple[str, str, int]


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        # Сервер закрыл простаивающее соединение — цикл событий уже прочитал EOF, системных вызовов не нужно
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(статус, тело, можно ли переиспользовать соединение)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status_text = lines[0].split(" ", 2)[:2]
    status = int(status_text)
    length, chunked, keep = -1, False, version == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep = keep and "close" not in value
    if status < 200 or status in (204, 304):
        return status, b"", keep
    if chunked:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # трейлеры
                    pass
                return status, b"".join(parts), keep
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if length >= 0:
        return status, await reader.readexactly(length), keep
    # Ни длины, ни chunked: тело до закрытия соединения
    return status, await reader.read(), False


class LeanBotRequest(BaseRequest):
    """BaseRequest PTB: keep-alive пул до pool_size соединений на адрес, таймауты как у HTTPXRequest."""

    def __init__(
        self,
        *,
        pool_size: int,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._timeouts = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._fallback = HTTPXRequest(
            connection_pool_size=pool_size,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: dict[_Key, list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts[0]

    async def initialize(self) -> None:
        await self._fallback.initialize()

    async def shutdown(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        await self._fallback.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if request_data is not None and request_data.contains_files:
            return await self._fallback.do_request(
                url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
            )
        read_s, write_s, connect_s, pool_s = (
            default if isinstance(given, DefaultValue) else given
            for given, default in zip(
                (read_timeout, write_timeout, connect_timeout, pool_timeout), self._timeouts, strict=True
            )
        )
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        key = (parts.scheme, host, parts.port or (443 if https else 80))
        body = request_data.url_encoded_parameters().encode() if request_data is not None else b""
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {self.USER_AGENT}\r\n"
            f"Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        try:
            async with asyncio.timeout(pool_s):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise TimedOut(
                "Pool timeout: all connections are busy. Request was *not* sent to Telegram."
            ) from exc
        try:
            return await self._exchange(key, head + body, read_s, write_s, connect_s)
        finally:
            self._slots.release()

    async def _exchange(
        self, key: _Key, request: bytes, read_s: Any, write_s: Any, connect_s: Any
    ) -> tuple[int, bytes]:
        connection = self._take_idle(key)
        try:
            if connection is None:
                connection = await self._connect(key, connect_s)
            connection.writer.write(request)
            async with asyncio.timeout(write_s):
                await connection.writer.drain()
            async with asyncio.timeout(read_s):
                status, body, keep = await _read_response(connection.reader)
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, TimeoutError):
                raise TimedOut from exc
            if isinstance(exc, (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)):
                raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
            raise
        if keep:
            self._idle.setdefault(key, []).append(connection)
        else:
            connection.close()
        return status, body

    def _take_idle(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _connect(self, key: _Key, connect_s: Any) -> _Connection:
        scheme, host, port = key
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        async with asyncio.timeout(connect_s):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
        return _Connection(reader, writer)
