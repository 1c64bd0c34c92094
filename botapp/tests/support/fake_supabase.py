"""Локальный Supabase Storage: те же REST-пути, заголовки и ответы, что видит storage3 (supabase-py 2.34).

Объекты в памяти, журнал запросов для проверок, свои часы для истечения ссылок,
внедрение сбоев (5xx) для проверки временных ошибок.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/storage/v1/object"


def fake_service_key(role: str = "service_role") -> str:
    """Строка формы JWT (header.payload.signature), как ключ Supabase; не секрет."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()

    signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return (
        f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'iss': 'fake-supabase', 'role': role})}.{signature}"
    )


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    content_type: str
    cache_control: str


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # authorization, apikey, content-type, x-upsert (в нижнем регистре)
    body_size: int
    status: int
    json_body: Any = None
    part_content_type: str = ""  # тип из части multipart "file" при загрузке


@dataclass
class FakeSupabase:
    service_key: str
    buckets: tuple[str, ...] = ("images", "videos")
    objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    clock_offset: float = 0.0
    # Гонка двух upsert: Supabase может ответить Duplicate и на upsert
    duplicate_even_with_upsert: bool = False
    _failures: list[int] = field(default_factory=list)
    _delays: list[float] = field(default_factory=list)
    _tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- управление из теста ---

    @property
    def base_url(self) -> str:
        assert self._server is not None, "сервер не запущен"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve_media(self, settings: Any) -> None:
        """Сделать этот сервер хранилищем результатов процесса теста (settings — фикстура pytest-django)."""
        settings.MEDIA_STORAGE_BACKEND = "supabase"
        settings.SUPABASE_URL = self.base_url
        settings.SUPABASE_SERVICE_ROLE_KEY = self.service_key
        settings.SUPABASE_BUCKET, settings.SUPABASE_VIDEO_BUCKET = self.buckets

    def advance(self, seconds: float) -> None:
        """Сдвинуть часы сервера: подписанные ссылки истекают без sleep."""
        self.clock_offset += seconds

    def fail_next(self, status: int, times: int = 1) -> None:
        """Следующие `times` запросов получат `status` (как 502/503 от шлюза)."""
        self._failures.extend([status] * times)

    def slow_next(self, seconds: float, times: int = 1) -> None:
        """Следующие `times` запросов ответят через `seconds` с (медленная сеть до хранилища)."""
        self._delays.extend([seconds] * times)

    def calls(self, method: str | None = None) -> list[LoggedRequest]:
        return [r for r in self.requests if method is None or r.method == method]

    def __enter__(self) -> FakeSupabase:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake._lock:
                    delay = fake._delays.pop(0) if fake._delays else 0.0
                time.sleep(delay)
                status, payload, content_type, extra = fake._dispatch(
                    self.command, self.path, self.headers, body
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- протокол ---

    def _now(self) -> float:
        return time.time() + self.clock_offset

    def _dispatch(
        self, method: str, raw_path: str, headers: Any, body: bytes
    ) -> tuple[int, bytes, str, dict[str, str]]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        logged = {
            name: headers.get(name)
            for name in ("authorization", "apikey", "content-type", "x-upsert")
            if headers.get(name) is not None
        }
        json_body: Any = None
        if (headers.get("content-type") or "").startswith("application/json") and body:
            json_body = json.loads(body)
        part_type = ""
        with self._lock:
            status, payload, content_type, part_type = self._route(
                method, path, query, headers, body, json_body
            )
            self.requests.append(
                LoggedRequest(method, path, query, logged, len(body), status, json_body, part_type)
            )
        if isinstance(payload, bytes):
            return status, payload, content_type, {}
        return status, json.dumps(payload).encode(), "application/json", {}

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes, json_body: Any
    ) -> tuple[int, Any, str, str]:
        if self._failures:
            code = self._failures.pop(0)
            # Шлюз перед Storage отвечает не JSON — storage3 разбирает и это
            return code, b"<html>upstream unavailable</html>", "text/html", ""
        if not path.startswith(PREFIX + "/"):
            return 404, _error(404, "not_found", "Route not found"), "", ""
        rest = path[len(PREFIX) + 1 :]
        # Скачивание по подписанной ссылке: ключ не нужен, токен в query
        if method == "GET" and rest.startswith("sign/"):
            return (*self._signed_download(rest[len("sign/") :], query.get("token", "")), "")
        auth = self._check_auth(headers)
        if auth is not None:
            return auth[0], auth[1], "", ""
        if method == "POST" and rest.startswith("sign/"):
            return (*self._sign(rest[len("sign/") :], json_body or {}), "")
        if method == "DELETE" and "/" not in rest:
            return (*self._remove(rest, json_body or {}), "")
        bucket, _, key = rest.partition("/")
        if bucket not in self.buckets:
            return 400, _error(404, "Bucket not found", "Bucket not found"), "", ""
        if method == "POST":
            return self._upload(bucket, key, headers, body)
        if method == "GET":
            return (*self._download(bucket, key), "")
        return 405, _error(405, "method_not_allowed", f"{method} not supported by the fake"), "", ""

    def _check_auth(self, headers: Any) -> tuple[int, Any] | None:
        apikey = headers.get("apikey")
        if not apikey:
            # Шлюз (Kong) Supabase: без apikey запрос до Storage не доходит
            return 401, {"message": "No API key found in request", "hint": "No `apikey` request header"}
        bearer = (headers.get("authorization") or "").removeprefix("Bearer ")
        if apikey != self.service_key or bearer != self.service_key:
            return 400, _error(403, "Unauthorized", "invalid signature")
        return None

    def _upload(self, bucket: str, key: str, headers: Any, body: bytes) -> tuple[int, Any, str, str]:
        fields = _multipart(headers.get("content-type") or "", body)
        if "file" not in fields:
            return 400, _error(400, "InvalidRequest", "file field is required"), "", ""
        data, part_type = fields["file"]
        upsert = (headers.get("x-upsert") or "").lower() == "true"
        if self.duplicate_even_with_upsert:
            upsert = False
        if (bucket, key) in self.objects and not upsert:
            # Как Supabase: HTTP 400, а настоящий код — в теле
            return 400, _error(409, "Duplicate", "The resource already exists"), "", part_type
        cache_control = fields.get("cacheControl", (b"3600", ""))[0].decode()
        self.objects[(bucket, key)] = StoredObject(
            data, part_type or "text/plain;charset=UTF-8", cache_control
        )
        return 200, {"Id": secrets.token_hex(8), "Key": f"{bucket}/{key}"}, "", part_type

    def _download(self, bucket: str, key: str) -> tuple[int, Any, str]:
        obj = self.objects.get((bucket, key))
        if obj is None:
            return 400, _error(404, "not_found", "Object not found"), ""
        return 200, obj.data, obj.content_type

    def _sign(self, rest: str, json_body: dict[str, Any]) -> tuple[int, Any, str]:
        bucket, _, key = rest.partition("/")
        expires_in = int(json_body.get("expiresIn", 0))
        if not key:
            # Пачка: POST /object/sign/{bucket} {"paths": […]} — ошибка на каждый путь, не на всю пачку
            if bucket not in self.buckets:
                return 400, _error(404, "Bucket not found", "Bucket not found"), ""
            items = []
            for path in json_body.get("paths") or []:
                if (bucket, path) in self.objects:
                    url, error = self._grant(bucket, path, expires_in), None
                else:
                    url, error = None, "Either the object does not exist or you do not have access to it"
                items.append({"error": error, "path": path, "signedURL": url})
            return 200, items, ""
        if (bucket, key) not in self.objects:
            return 400, _error(404, "not_found", "Object not found"), ""
        return 200, {"signedURL": self._grant(bucket, key, expires_in)}, ""

    def _grant(self, bucket: str, key: str, expires_in: int) -> str:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (bucket, key, self._now() + expires_in)
        return f"/object/sign/{bucket}/{key}?token={token}"

    def _signed_download(self, rest: str, token: str) -> tuple[int, Any, str]:
        bucket, _, key = rest.partition("/")
        grant = self._tokens.get(token)
        if grant is None or grant[:2] != (bucket, key):
            return 400, _error(400, "InvalidJWT", "invalid signature"), ""
        if grant[2] <= self._now():
            return 400, _error(400, "InvalidJWT", '"exp" claim timestamp check failed'), ""
        return self._download(bucket, key)

    def _remove(self, bucket: str, json_body: dict[str, Any]) -> tuple[int, Any, str]:
        if bucket not in self.buckets:
            return 400, _error(404, "Bucket not found", "Bucket not found"), ""
        removed = []
        for key in json_body.get("prefixes", []):
            if self.objects.pop((bucket, key), None) is not None:
                removed.append({"name": key, "bucket_id": bucket})
        return 200, removed, ""


def _error(status: int, error: str, message: str) -> dict[str, str]:
    # Форма ошибки Storage API: statusCode строкой
    return {"statusCode": str(status), "error": error, "message": message}


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str]]:
    """Поля multipart/form-data: имя → (байты как есть, тип части)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        return {}
    fields: dict[str, tuple[bytes, str]] = {}
    for chunk in body.split(b"--" + match.group(1).encode())[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        part_headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            part_headers[name.strip().lower()] = value.strip()
        field_name = re.search(r'(?:^|;)\s*name="([^"]*)"', part_headers.get("content-disposition", ""))
        if field_name is not None:
            fields[field_name.group(1)] = (data.removesuffix(b"\r\n"), part_headers.get("content-type", ""))
    return fields
