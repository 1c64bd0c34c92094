"""Локальные серверы, говорящие настоящими протоколами (или молчащие, как зависший сервис)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@contextmanager
def hung_listener() -> Iterator[int]:
    """TCP-порт, который принимает соединения и никогда не отвечает."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


class ApiError:
    """Ответ-ошибка Bot API, который responder может вернуть."""

    def __init__(self, code: int, description: str) -> None:
        self.code, self.description = code, description


class FakeBotApi:
    """Мини Bot API: POST /bot<token>/<method>, ответы {"ok":…}; журнал запросов для проверок."""

    def __init__(self, responder: Callable[[str, dict[str, Any]], Any]) -> None:
        self.responder = responder
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tokens: list[str] = []

    def handle(self, path: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        _, token_part, method = path.split("/", 2)
        self.tokens.append(token_part.removeprefix("bot"))
        if content_type.startswith("application/json"):
            params = json.loads(body or b"{}")
        else:
            params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.calls.append((method, params))
        result = self.responder(method, params)
        if isinstance(result, ApiError):
            return result.code, {"ok": False, "error_code": result.code, "description": result.description}
        return 200, {"ok": True, "result": result}

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


@contextmanager
def fake_bot_api(responder: Callable[[str, dict[str, Any]], Any]) -> Iterator[tuple[str, FakeBotApi]]:
    api = FakeBotApi(responder)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = api.handle(self.path, body, self.headers.get("Content-Type", ""))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", api
    finally:
        server.shutdown()
        server.server_close()


def fake_bot_token() -> str:
    """Токен в формате Telegram (id:секрет), собранный при запуске: в репозитории нет похожих строк."""
    import secrets

    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(27)}"
