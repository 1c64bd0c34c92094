"""Лёгкий клиент Bot API (LeanBotRequest) против настоящего HTTP-сервера на asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from telegram.error import TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from botapp.telegram.httpclient import LeanBotRequest

Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


def _data(**params: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(key, value) for key, value in params.items()])


async def _serve(reply: Reply) -> tuple[asyncio.Server, list[bytes], list[int]]:
    """Сервер: на каждый запрос зовёт reply(тело, writer); False — закрыть соединение."""
    bodies: list[bytes] = []
    connections = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            bodies.append(head + body)
            if not await reply(body, writer):
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, bodies, connections


def _url(server: asyncio.Server, method: str = "sendMessage") -> str:
    port = server.sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}/bot123:ABC/{method}"


def test_it_sends_a_form_and_reuses_the_connection_for_length_and_chunked_bodies() -> None:
    async def reply(body: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"chunked" in body:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b'3\r\n{"o\r\n9\r\nk": true}\r\n0\r\n\r\n')
        else:
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{"ok": true}')
        await writer.drain()
        return True

    async def scenario() -> None:
        server, bodies, connections = await _serve(reply)
        request = LeanBotRequest(pool_size=2)
        await request.initialize()
        first = await request.do_request(_url(server), "POST", _data(chat_id=5, text="привет"))
        second = await request.do_request(_url(server), "POST", _data(chat_id=5, text="chunked"))
        await request.shutdown()
        server.close()
        assert first == (200, b'{"ok": true}')
        assert second == (200, b'{"ok": true}')
        assert connections[0] == 1
        assert b"POST /bot123:ABC/sendMessage HTTP/1.1" in bodies[0]
        assert b"application/x-www-form-urlencoded" in bodies[0]
        assert bodies[0].endswith(b"chat_id=5&text=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82")

    asyncio.run(scenario())


def test_a_connection_the_server_closed_is_not_reused() -> None:
    async def reply(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 13\r\n\r\n{"ok": false}')
        await writer.drain()
        return False  # закрыть после ответа, как сервер с истёкшим keep-alive

    async def scenario() -> None:
        server, _bodies, connections = await _serve(reply)
        request = LeanBotRequest(pool_size=2)
        await request.initialize()
        assert await request.do_request(_url(server), "POST", _data(chat_id=1)) == (400, b'{"ok": false}')
        await asyncio.sleep(0.05)  # цикл событий успевает прочитать EOF
        assert await request.do_request(_url(server), "POST", _data(chat_id=1)) == (400, b'{"ok": false}')
        await request.shutdown()
        server.close()
        assert connections[0] == 2

    asyncio.run(scenario())


def test_a_server_that_does_not_answer_in_time_gives_timed_out() -> None:
    async def reply(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(1)
        return False

    async def scenario() -> None:
        server, _bodies, _connections = await _serve(reply)
        request = LeanBotRequest(pool_size=1, read_timeout=0.1)
        await request.initialize()
        with pytest.raises(TimedOut):
            await request.do_request(_url(server), "POST", _data(chat_id=1))
        await request.shutdown()
        server.close()

    asyncio.run(scenario())
