"""Клиент Bot API (AiohttpRequest) против настоящего HTTP-сервера: что уходит в сеть, что приходит в PTB."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from email.message import Message
from email.parser import BytesParser
from typing import Any

import pytest
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from botapp.telegram.httpclient import AiohttpRequest

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}'

# reply(запрос, writer) — ответить; вернуть False, чтобы закрыть соединение
Reply = Callable[["Received", asyncio.StreamWriter], Awaitable[bool]]


class Received:
    def __init__(self, head: bytes, body: bytes) -> None:
        self.head, self.body = head, body
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }


class Server:
    """Сервер HTTP/1.1 на голых потоках: считает соединения и хранит каждый запрос как есть."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[Received] = []
        self.connections = 0
        self.closed_by_client = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, method: str = "sendMessage") -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/bot123:ABC/{method}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    break
                request = Received(head, b"")
                if request.headers.get("transfer-encoding") == "chunked":
                    parts = []
                    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                        parts.append(await reader.readexactly(size))
                        await reader.readexactly(2)
                    await reader.readuntil(b"\r\n")
                    request.body = b"".join(parts)
                else:
                    request.body = await reader.readexactly(int(request.headers.get("content-length", 0)))
                self.requests.append(request)
                if not await self.reply(request, writer):
                    break
        finally:
            writer.close()


async def _ok(request: Received, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    await writer.drain()
    return True


def _data(**params: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(key, value) for key, value in params.items()])


def test_it_posts_a_form_and_reuses_one_keep_alive_connection() -> None:
    async def scenario() -> None:
        async with Server(_ok) as server:
            request = AiohttpRequest(pool_size=4)
            await request.initialize()
            first = await request.do_request(server.url(), "POST", _data(chat_id=5, text="привет"))
            second = await request.do_request(server.url(), "POST", _data(chat_id=5, text="ещё"))
            third = await request.do_request(server.url("getMe"), "POST")
            await request.shutdown()
        assert first == second == third == (200, b'{"ok": true}')
        assert server.connections == 1
        sent = server.requests[0]
        assert sent.request_line == "POST /bot123:ABC/sendMessage HTTP/1.1"
        assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
        assert sent.headers["user-agent"] == AiohttpRequest.USER_AGENT
        assert sent.body == b"chat_id=5&text=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82"
        assert server.requests[2].body == b""

    asyncio.run(scenario())


def test_a_chunked_error_response_comes_back_as_status_and_body() -> None:
    async def reply(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b'3\r\n{"o\r\nA\r\nk": false}\r\n0\r\n\r\n')
        await writer.drain()
        return True

    async def scenario() -> None:
        async with Server(reply) as server:
            request = AiohttpRequest(pool_size=1)
            await request.initialize()
            result = await request.do_request(server.url(), "POST", _data(chat_id=1))
            await request.shutdown()
        assert result == (400, b'{"ok": false}')

    asyncio.run(scenario())


def test_a_connection_the_server_closed_while_idle_is_replaced_not_failed() -> None:
    async def reply(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(OK)  # ответ обещает keep-alive, но сервер закрывает соединение сразу после него
        await writer.drain()
        return False

    async def scenario() -> None:
        async with Server(reply) as server:
            request = AiohttpRequest(pool_size=1)
            await request.initialize()
            for _ in range(3):
                result = await request.do_request(server.url(), "POST", _data(chat_id=1))
                assert result == (200, b'{"ok": true}')
                await asyncio.sleep(0.05)  # простой: сервер успевает закрыть соединение
            await request.shutdown()
        assert server.connections == 3

    asyncio.run(scenario())


def test_a_multipart_upload_carries_the_file_and_the_other_fields() -> None:
    async def scenario() -> None:
        async with Server(_ok) as server:
            request = AiohttpRequest(pool_size=1)
            await request.initialize()
            data = _data(
                chat_id=7,
                caption="подпись",
                document=InputFile(b"\x00binary\xffcontent", filename="report.bin"),
            )
            assert data.contains_files
            result = await request.do_request(server.url("sendDocument"), "POST", data)
            await request.shutdown()
        assert result == (200, b'{"ok": true}')
        sent = server.requests[0]
        assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
        message = BytesParser().parsebytes(
            b"Content-Type: " + sent.headers["content-type"].encode() + b"\r\n\r\n" + sent.body
        )
        assert message.is_multipart()
        parts: dict[str, Message] = {}
        for part in message.get_payload():
            assert isinstance(part, Message)
            parts[str(part.get_param("name", header="content-disposition"))] = part
        assert set(parts) == {"chat_id", "caption", "document"}
        assert parts["chat_id"].get_payload(decode=True) == b"7"
        caption = parts["caption"].get_payload(decode=True)
        assert isinstance(caption, bytes)
        assert caption.decode() == "подпись"
        document = parts["document"]
        assert document.get_filename() == "report.bin"
        assert document.get_content_type() == "application/octet-stream"
        assert document.get_payload(decode=True) == b"\x00binary\xffcontent"

    asyncio.run(scenario())


def _silent(seconds: float) -> Reply:
    async def reply(request: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(seconds)
        writer.write(OK)
        await writer.drain()
        return True

    return reply


def test_a_server_that_does_not_answer_in_time_gives_timed_out() -> None:
    async def scenario() -> None:
        async with Server(_silent(2)) as server:
            request = AiohttpRequest(pool_size=1, read_timeout=0.1)
            await request.initialize()
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimedOut):
                await request.do_request(server.url(), "POST", _data(chat_id=1))
            assert asyncio.get_running_loop().time() - started < 1
            await request.shutdown()

    asyncio.run(scenario())


def test_a_per_call_timeout_overrides_the_default_and_the_default_applies_otherwise() -> None:
    async def scenario() -> None:
        async with Server(_silent(0.3)) as server:
            request = AiohttpRequest(pool_size=1, read_timeout=0.1)
            await request.initialize()
            with pytest.raises(TimedOut):  # DEFAULT_NONE — берётся read_timeout объекта
                await request.do_request(server.url(), "POST", _data(chat_id=1))
            assert await request.do_request(server.url(), "POST", _data(chat_id=1), read_timeout=2) == (
                200,
                b'{"ok": true}',
            )
            await request.shutdown()

    asyncio.run(scenario())


def test_waiting_for_a_busy_pool_gives_timed_out_without_opening_more_connections() -> None:
    async def scenario() -> None:
        async with Server(_silent(1)) as server:
            request = AiohttpRequest(pool_size=1, pool_timeout=0.1, connect_timeout=0.1)
            await request.initialize()
            busy = asyncio.create_task(request.do_request(server.url(), "POST", _data(chat_id=1)))
            await asyncio.sleep(0.1)
            with pytest.raises(TimedOut):
                await request.do_request(server.url(), "POST", _data(chat_id=2))
            assert await busy == (200, b'{"ok": true}')
            await request.shutdown()
        assert server.connections == 1

    asyncio.run(scenario())


def test_a_refused_connection_gives_network_error_not_timed_out() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # порт свободен: после закрытия никто не слушает

    async def scenario() -> None:
        request = AiohttpRequest(pool_size=1)
        await request.initialize()
        with pytest.raises(NetworkError) as caught:
            await request.do_request(f"http://127.0.0.1:{port}/bot123:ABC/getMe", "POST")
        assert not isinstance(caught.value, TimedOut)
        await request.shutdown()

    asyncio.run(scenario())


def test_shutdown_closes_pooled_connections_and_a_new_initialize_works_again() -> None:
    async def scenario() -> None:
        async with Server(_ok) as server:
            request = AiohttpRequest(pool_size=1)
            with pytest.raises(RuntimeError):
                await request.do_request(server.url(), "POST")
            await request.initialize()
            await request.do_request(server.url(), "POST")
            await request.shutdown()
            await asyncio.sleep(0.05)
            assert server.closed_by_client == 1
            await request.initialize()
            assert await request.do_request(server.url(), "POST") == (200, b'{"ok": true}')
            await request.shutdown()

    asyncio.run(scenario())


def test_the_web_application_sends_bot_api_calls_through_aiohttp() -> None:
    from botapp.telegram.application import BOT_API_CONNECTIONS, build_application

    request = build_application().bot.request
    assert isinstance(request, AiohttpRequest)
    assert request._pool_size == BOT_API_CONNECTIONS
