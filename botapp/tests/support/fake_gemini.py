"""Локальный сервер Gemini API: REST-формы API_NOTES §1.8, настоящие PNG и MP4.

Поведение задаётся ТОЛЬКО запросом — ключевыми словами в промпте (текст картинки или
instances[0].prompt у Veo), поэтому сервер годится и для подпроцессов (воркер Celery ходит
сюда по GEMINI_API_BASE_URL), где тест не может настроить подделку напрямую.

Ключевые слова:
  [429] [500] [502] [503] [504] [400] [403]  — всегда этот HTTP-код (форма google.rpc.Status;
                       у 429 в details RetryInfo.retryDelay = retry_after_s, по умолчанию "7s")
  [429x2] (любой код и N) — первые N запросов с этим промптом получают код, дальше — успех
                       (счётчик на промпт и конечную точку)
  [hang]               — молчать hang_s секунд (больше таймаута клиента), затем ответить
  [slow:N]             — задержка N секунд (дробные можно) перед обычным ответом
Картинки (generateContent):
  [blocked]            — promptFeedback.blockReason = PROHIBITED_CONTENT, без candidates
  [unsafe]             — finishReason IMAGE_SAFETY, только текст
  [unsafe#N]           — только N-й вызов с этим промптом получает IMAGE_SAFETY (частичный результат)
  [noimage]            — finishReason NO_IMAGE, только текст
  [textonly]           — finishReason STOP, только текстовая часть
  [thought]            — перед настоящей картинкой промежуточная «мысль» (thought=true, 64×64)
  [thoughtonly]        — только «мысль» и текст, без итоговой картинки
  [wrongratio]         — квадрат независимо от запрошенного соотношения
  [noisy]              — шум без сжатия: 2K ≈ 12 МБ PNG (проверка лимитов хранилища и Telegram)
Видео (predictLongRunning → GET операции → files/…:download):
  [polls:N]            — операция готова на N-м GET (по умолчанию default_polls = 1)
  [after:S]            — и не раньше S секунд после запуска
  [filtered]           — done без роликов, raiMediaFilteredCount = 1
  [opfail]             — done с error {code: 13 INTERNAL};  [opinvalid] — error {code: 3}
  [poll429] [poll429x2] (любой код) — опрос операции отвечает этим кодом (всегда или первые N раз)
  [mb:N]               — скачанный ролик дополнен до N МБ (MP4 с блоком free в конце: больше лимита
                       загрузки бота в Telegram, 50 МБ)

Vertex AI (SDK с vertexai=True, api_version v1beta1):
  POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent — как выше;
  …:predictLongRunning — имя операции projects/{p}/locations/{l}/publishers/google/models/{m}/operations/{id};
  …:fetchPredictOperation {operationName} — готовый ролик байтами в response.videos[].bytesBase64Encoded
  (с parameters.storageUri — только gcsUri, как у Google).
  Авторизация — только «Authorization: Bearer <токен>», выданный POST /oauth2/token (JWT-assertion
  сервисного аккаунта, см. service_account_info); нет или чужой — 401 UNAUTHENTICATED.
  Экспресс-режим (ключ без проекта): те же методы по /v1beta1/publishers/google/models/{m}:…,
  авторизация — x-goog-api-key (нет — 401, чужой — 400 API_KEY_INVALID).
  client_email со словом revoked — token_uri отвечает invalid_grant (как на удалённый ключ).

Проверки как у Google: нет ключа → 403 PERMISSION_DENIED; чужой ключ → 400 API_KEY_INVALID;
неизвестная модель → 404 NOT_FOUND; недопустимые aspectRatio/imageSize/resolution → 400.

Запуск: `with FakeGemini() as fake: ... fake.base_url ... fake.requests`; из другого процесса —
`python -m botapp.tests.support.fake_gemini --port 0` (печатает base_url первой строкой), журнал
доступен по GET {base_url}/_fake/requests.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

IMAGE_MODELS = frozenset(
    {
        "gemini-2.5-flash-image",
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
        "gemini-3.1-flash-lite-image-preview",
    }
)
VIDEO_MODELS = frozenset(
    {
        "veo-3.1-generate-preview",
        "veo-3.1-fast-generate-preview",
        "veo-3.1-lite-generate-preview",
        "veo-3.0-generate-001",
        "veo-3.0-fast-generate-001",
        # GA-имена Vertex
        "veo-3.1-generate-001",
        "veo-3.1-fast-generate-001",
    }
)
# Размеры настоящего Gemini в 1K (не ровно 1024 по длинной стороне): 4:3 отличается на 2,8 %
BASE_1K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
SIZE_SCALE = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}
VIDEO_RATIOS = {"16:9", "9:16"}
VIDEO_RESOLUTIONS = {"720p", "1080p", "4k"}
VIDEO_DURATIONS = {4, 5, 6, 8}
RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ERROR_KEYWORD = re.compile(r"\[(\d{3})(?:x(\d+))?\]")
UNSAFE_NTH_KEYWORD = re.compile(r"\[unsafe#(\d+)\]")
SLOW_KEYWORD = re.compile(r"\[slow:([\d.]+)\]")
POLLS_KEYWORD = re.compile(r"\[polls:(\d+)\]")
AFTER_KEYWORD = re.compile(r"\[after:([\d.]+)\]")
SIZE_KEYWORD = re.compile(r"\[mb:(\d+)\]")
POLL_ERROR_KEYWORD = re.compile(r"\[poll(\d{3})(?:x(\d+))?\]")
ROUTE = re.compile(
    r"^/(?P<ver>v1|v1beta)/(?:"
    r"models/(?P<model>[^/:]+):(?P<method>generateContent|predictLongRunning)"
    r"|models/(?P<op_model>[^/:]+)/operations/(?P<op>[A-Za-z0-9_-]+)"
    r"|files/(?P<file>[a-z0-9]+):download"
    r")$"
)
VERTEX_ROUTE = re.compile(
    # Без projects/…/locations/… — экспресс-режим Vertex (только ключ)
    r"^/(?P<ver>v1|v1beta1)/(?P<resource>(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"publishers/google/models/(?P<model>[^/:]+))"
    r":(?P<method>generateContent|predictLongRunning|fetchPredictOperation)$"
)
TOKEN_PATH = "/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # ключи в нижнем регистре
    body: Any  # разобранный JSON или None
    size: int = 0

    @property
    def api_key(self) -> str | None:
        keys = self.query.get("key") or []
        return self.headers.get("x-goog-api-key") or (keys[0] if keys else None)

    def parts(self) -> list[dict[str, Any]]:
        contents = (self.body or {}).get("contents") or []
        return [part for content in contents for part in content.get("parts", [])]

    def prompt(self) -> str:
        if isinstance(self.body, dict) and self.body.get("instances"):
            return str(self.body["instances"][0].get("prompt", ""))
        return " ".join(part["text"] for part in self.parts() if "text" in part)

    def inline_images(self) -> list[tuple[str, bytes]]:
        """(mime, байты) инлайн-картинок запроса; SDK шлёт mime_type и URL-safe base64 — принимаем оба."""
        images = []
        for part in self.parts():
            blob = part.get("inlineData") or part.get("inline_data")
            if blob:
                mime = blob.get("mimeType") or blob.get("mime_type") or ""
                images.append((mime, b64decode_any(blob.get("data", ""))))
        return images


def b64decode_any(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    return base64.b64decode(padded.replace("-", "+").replace("_", "/"))


def image_size_for(aspect_ratio: str, image_size: str) -> tuple[int, int]:
    width, height = BASE_1K[aspect_ratio]
    scale = SIZE_SCALE[image_size]
    return int(width * scale), int(height * scale)


def render_png(width: int, height: int, prompt: str, *, noisy: bool = False) -> bytes:
    out = io.BytesIO()
    if noisy:
        # Случайные байты не сжимаются: размер ≈ 3 байта на пиксель
        Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
            out, "PNG", compress_level=0
        )
        return out.getvalue()
    digest = hashlib.sha256(prompt.encode()).digest()
    image = Image.new("RGB", (width, height), (digest[0], digest[1], digest[2]))
    ImageDraw.Draw(image).text((10, 10), f"FAKE GEMINI {width}x{height}", fill="white")
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


_mp4_lock = threading.Lock()
_mp4_cache: bytes | None = None


def fake_mp4() -> bytes:
    """Настоящий MP4 (2 с, 160×90), кодируется один раз на процесс."""
    global _mp4_cache
    with _mp4_lock:
        if _mp4_cache is None:
            import imageio_ffmpeg

            fd, name = tempfile.mkstemp(suffix=".mp4")
            os.close(fd)
            try:
                writer = imageio_ffmpeg.write_frames(
                    name, (160, 90), fps=8, codec="libx264", macro_block_size=2, quality=None,
                    output_params=["-preset", "ultrafast", "-movflags", "+faststart"],
                )  # fmt: skip
                writer.send(None)
                for index in range(16):
                    writer.send(bytes([index * 15 % 256, 80, 160]) * (160 * 90))
                writer.close()
                _mp4_cache = Path(name).read_bytes()
            finally:
                Path(name).unlink(missing_ok=True)
        return _mp4_cache


def padded_mp4(megabytes: int) -> bytes:
    """fake_mp4, дополненный до megabytes МБ блоком free (проигрыватели его пропускают)."""
    video = fake_mp4()
    padding = megabytes * 1024 * 1024 - len(video) - 8
    if padding < 0:
        return video
    return video + (padding + 8).to_bytes(4, "big") + b"free" + bytes(padding)


@dataclass
class _Operation:
    name: str
    prompt: str
    created: float
    need_polls: int
    after_s: float
    polls: int = 0
    failed_polls: int = 0
    vertex: bool = False
    storage_uri: str = ""
    file_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class FakeGemini:
    """Сервер на 127.0.0.1:порт (0 — свободный) в фоновом потоке; контекстный менеджер."""

    def __init__(
        self,
        *,
        api_key: str = "test-gemini-key",
        host: str = "127.0.0.1",
        port: int = 0,
        hang_s: float = 30.0,
        default_polls: int = 1,
        retry_after_s: int = 7,
    ) -> None:
        self.api_key = api_key
        self.hang_s = hang_s
        self.default_polls = default_polls
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._counters: dict[tuple[str, str], int] = {}
        self._operations: dict[str, _Operation] = {}
        self._files: dict[str, int] = {}  # id файла ролика → размер в МБ (0 — как есть)
        self._tokens: dict[str, dict[str, Any]] = {}  # выданный токен → claims его JWT
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---- жизненный цикл

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGemini:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-gemini", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # будит зависшие [hang]-обработчики
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- журнал

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def requests_to(self, path_part: str) -> list[RecordedRequest]:
        return [r for r in self.requests if path_part in r.path]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def token_uri(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def tokens(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._tokens)

    # ---- обработка

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = fake.handle(method, self.path, dict(self.headers.items()), raw)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # клиент ушёл по таймауту ([hang])

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(raw_path)
        lowered = {k.lower(): v for k, v in headers.items()}
        body: Any
        try:
            if "x-www-form-urlencoded" in lowered.get("content-type", ""):
                # google-auth шлёт обмен JWT на токен формой
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method=method,
            path=url.path,
            query=parse_qs(url.query),
            headers=lowered,
            body=body,
            size=len(raw),
        )
        if url.path == "/_fake/requests":
            return self._json(200, [asdict(r) for r in self.requests])
        with self._lock:
            self._log.append(request)
        if raw and body is None:
            return self._error(400, "Invalid JSON payload received.")
        if url.path == TOKEN_PATH and method == "POST":
            return self._token(request)
        vertex = VERTEX_ROUTE.match(url.path)
        if vertex is not None:
            return self._vertex(vertex, request)
        if not request.api_key:
            return self._error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity).",
            )
        if request.api_key != self.api_key:
            return self._error(400, "API key not valid. Please pass a valid API key.")
        route = ROUTE.match(url.path)
        if route is None:
            return self._error(404, f"Requested entity was not found: {url.path}")
        if route["file"]:
            return self._download(route["file"])
        if route["op"]:
            return self._operation(f"models/{route['op_model']}/operations/{route['op']}")
        model, ver = route["model"], route["ver"]
        if model not in IMAGE_MODELS | VIDEO_MODELS:
            return self._error(404, f"models/{model} is not found for API version {ver}.")
        return self._model_call(route["method"], model, request, f"models/{model}")

    def _model_call(
        self, method: str, model: str, request: RecordedRequest, resource: str
    ) -> tuple[int, dict[str, str], bytes]:
        """generateContent / predictLongRunning — общие для Gemini API и Vertex."""
        prompt = request.prompt()
        early = self._keyword_behaviour(method, prompt)
        if early is not None:
            return early
        if method == "generateContent":
            if model not in IMAGE_MODELS:
                return self._error(400, f"models/{model} does not support generateContent.")
            return self._generate_content(model, request, prompt)
        if model not in VIDEO_MODELS:
            return self._error(400, f"models/{model} does not support predictLongRunning.")
        return self._predict_long_running(model, request, prompt, resource)

    # ---- Vertex AI и OAuth2

    def _token(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        """Обмен JWT сервисного аккаунта на токен (RFC 7523), ответ как у oauth2.googleapis.com."""
        form = request.body or {}
        assertion = str(form.get("assertion") or "")
        if form.get("grant_type") != JWT_GRANT or assertion.count(".") != 2:
            return self._json(400, {"error": "invalid_grant", "error_description": "Invalid grant type."})
        try:
            claims = json.loads(b64decode_any(assertion.split(".")[1]))
        except ValueError:
            return self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
        # Подпись не проверяем (ключ тестовый), но адресат, срок и scope — как Google
        # (google-auth всегда ставит aud = адрес Google, а шлёт на token_uri из JSON)
        if (
            claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri)
            or not claims.get("iss")
            or claims.get("exp", 0) < time.time()
            or not claims.get("scope")
        ):
            return self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."})
        if "revoked" in str(claims.get("iss")):
            # Так Google отвечает на удалённый ключ сервисного аккаунта
            return self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        token = f"ya29.fake-{uuid.uuid4().hex}"
        with self._lock:
            self._tokens[token] = claims
        return self._json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _vertex(self, route: re.Match[str], request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        auth = request.headers.get("authorization", "")
        if route["project"] is None:
            # Экспресс-режим: ключ API вместо токена сервисного аккаунта
            if not request.api_key:
                return self._error(401, "Request had invalid authentication credentials.")
            if request.api_key != self.api_key:
                return self._error(400, "API key not valid. Please pass a valid API key.")
        else:
            with self._lock:
                known = auth.startswith("Bearer ") and auth[len("Bearer ") :] in self._tokens
            if not known:
                return self._error(401, "Request had invalid authentication credentials.")
        model, resource = route["model"], route["resource"]
        if model not in IMAGE_MODELS | VIDEO_MODELS:
            return self._error(404, f"Publisher Model `{resource}` was not found.")
        if route["method"] != "fetchPredictOperation":
            return self._model_call(route["method"], model, request, resource)
        name = str((request.body or {}).get("operationName") or "")
        if not name.startswith(f"{resource}/operations/"):
            return self._error(400, f"operationName {name!r} does not belong to {resource}.")
        return self._operation(name)

    def _keyword_behaviour(self, endpoint: str, prompt: str) -> tuple[int, dict[str, str], bytes] | None:
        slow = SLOW_KEYWORD.search(prompt)
        if slow:
            self._closing.wait(float(slow[1]))
        if "[hang]" in prompt:
            self._closing.wait(self.hang_s)
        for match in ERROR_KEYWORD.finditer(prompt):
            code = int(match[1])
            if code not in RPC_STATUS:
                continue
            if match[2] is not None:
                key = (endpoint, prompt)
                with self._lock:
                    seen = self._counters.get(key, 0)
                    self._counters[key] = seen + 1
                if seen >= int(match[2]):
                    continue
            return self._error(code, _ERROR_MESSAGES.get(code, "Error"))
        return None

    def _generate_content(
        self, model: str, request: RecordedRequest, prompt: str
    ) -> tuple[int, dict[str, str], bytes]:
        config = (request.body or {}).get("generationConfig") or {}
        image_config = config.get("imageConfig") or {}
        ratio = image_config.get("aspectRatio") or "1:1"
        size = image_config.get("imageSize") or "1K"
        if ratio not in BASE_1K:
            return self._error(400, f"Unsupported aspect ratio: {ratio}")
        if size not in SIZE_SCALE:
            return self._error(400, f"Unsupported image size: {size}")
        modalities = [m.upper() for m in config.get("responseModalities") or []]
        if modalities and "IMAGE" not in modalities:
            return self._error(400, "Model only supports IMAGE output with responseModalities IMAGE.")
        for mime, data in request.inline_images():
            if len(data) > 7 * 1024 * 1024:
                return self._error(400, f"Inline image exceeds 7 MB ({len(data)} bytes, {mime}).")
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 1290, "totalTokenCount": 1300}
        if "[blocked]" in prompt:
            return self._json(
                200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": usage}
            )
        text_part = {"text": "Here is your image."}
        unsafe_nth = UNSAFE_NTH_KEYWORD.search(prompt)
        if unsafe_nth:
            key = ("unsafe-nth", prompt)
            with self._lock:
                self._counters[key] = call = self._counters.get(key, 0) + 1
            if call == int(unsafe_nth[1]):
                return self._json(
                    200, self._candidate([{"text": "I can't draw that."}], "IMAGE_SAFETY", model, usage)
                )
        for keyword, reason in (
            ("[unsafe]", "IMAGE_SAFETY"),
            ("[noimage]", "NO_IMAGE"),
            ("[textonly]", "STOP"),
        ):
            if keyword in prompt:
                return self._json(
                    200, self._candidate([{"text": "I can't draw that."}], reason, model, usage)
                )
        width, height = (
            image_size_for("1:1", size) if "[wrongratio]" in prompt else image_size_for(ratio, size)
        )
        if "[noisy]" in prompt:
            width, height = image_size_for(ratio, size)
        png = render_png(width, height, prompt, noisy="[noisy]" in prompt)
        parts: list[dict[str, Any]] = [text_part]
        if "[thoughtonly]" in prompt:
            thought = {"inlineData": _inline(render_png(64, 64, "thought")), "thought": True}
            return self._json(200, self._candidate([thought, text_part], "STOP", model, usage))
        if "[thought]" in prompt:
            parts.insert(0, {"inlineData": _inline(render_png(64, 64, "thought")), "thought": True})
        parts.append({"inlineData": _inline(png), "thoughtSignature": base64.b64encode(b"sig").decode()})
        return self._json(200, self._candidate(parts, "STOP", model, usage))

    @staticmethod
    def _candidate(parts: list[dict[str, Any]], reason: str, model: str, usage: dict[str, int]) -> Any:
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": 0}
            ],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:16],
        }

    def _predict_long_running(
        self, model: str, request: RecordedRequest, prompt: str, resource: str
    ) -> tuple[int, dict[str, str], bytes]:
        body = request.body or {}
        instances = body.get("instances") or []
        params = body.get("parameters") or {}
        if len(instances) != 1 or not isinstance(instances[0].get("prompt"), str):
            return self._error(400, "instances[0].prompt is required.")
        image = instances[0].get("image")
        if image is not None and ("bytesBase64Encoded" not in image or "inlineData" in image):
            return self._error(400, "image.inlineData isn't supported by this model; use bytesBase64Encoded.")
        if params.get("aspectRatio", "16:9") not in VIDEO_RATIOS:
            return self._error(400, f"Unsupported aspect ratio: {params.get('aspectRatio')}")
        if str(params.get("resolution", "720p")).lower() not in VIDEO_RESOLUTIONS:
            return self._error(400, f"Unsupported resolution: {params.get('resolution')}")
        if params.get("durationSeconds", 8) not in VIDEO_DURATIONS:
            return self._error(400, f"Unsupported duration: {params.get('durationSeconds')}")
        polls = POLLS_KEYWORD.search(prompt)
        after = AFTER_KEYWORD.search(prompt)
        vertex = resource.startswith(("projects/", "publishers/"))
        # У Vertex id операции — UUID, у Gemini API — короткий
        name = f"{resource}/operations/{uuid.uuid4() if vertex else uuid.uuid4().hex[:12]}"
        operation = _Operation(
            name=name,
            prompt=prompt,
            created=time.monotonic(),
            need_polls=int(polls[1]) if polls else self.default_polls,
            after_s=float(after[1]) if after else 0.0,
            vertex=vertex,
            storage_uri=str(params.get("storageUri") or ""),
        )
        with self._lock:
            self._operations[name] = operation
        return self._json(200, {"name": name})

    def _operation(self, name: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            operation = self._operations.get(name)
            if operation is None:
                return self._error(404, f"Operation {name} not found.")
            poll_error = POLL_ERROR_KEYWORD.search(operation.prompt)
            if poll_error and (poll_error[2] is None or operation.failed_polls < int(poll_error[2])):
                operation.failed_polls += 1
                code = int(poll_error[1])
                return self._error(code, _ERROR_MESSAGES.get(code, "Error"))
            operation.polls += 1
        ready = operation.polls >= operation.need_polls and (
            time.monotonic() - operation.created >= operation.after_s
        )
        if not ready:
            return self._json(200, {"name": name, "done": False})
        if "[opfail]" in operation.prompt:
            return self._json(200, {"name": name, "done": True, "error": {"code": 13, "message": "Internal"}})
        if "[opinvalid]" in operation.prompt:
            return self._json(200, {"name": name, "done": True, "error": {"code": 3, "message": "Bad input"}})
        if operation.vertex:
            return self._json(200, {"name": name, "done": True, "response": self._vertex_videos(operation)})
        response: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
        }
        if "[filtered]" in operation.prompt:
            response["generateVideoResponse"] = {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": ["Video was filtered by the safety system."],
            }
        else:
            with self._lock:
                size = SIZE_KEYWORD.search(operation.prompt)
                self._files[operation.file_id] = int(size[1]) if size else 0
            uri = f"https://generativelanguage.googleapis.com/v1beta/files/{operation.file_id}:download?alt=media"
            response["generateVideoResponse"] = {"generatedSamples": [{"video": {"uri": uri}}]}
        return self._json(200, {"name": name, "done": True, "response": response})

    @staticmethod
    def _vertex_videos(operation: _Operation) -> dict[str, Any]:
        """Ответ Vertex: без storageUri ролик приходит байтами прямо в операции."""
        response: dict[str, Any] = {
            "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
            "raiMediaFilteredCount": 0,
        }
        if "[filtered]" in operation.prompt:
            response["raiMediaFilteredCount"] = 1
            response["raiMediaFilteredReasons"] = ["Video was filtered by the safety system."]
        elif operation.storage_uri:
            uri = f"{operation.storage_uri.rstrip('/')}/{operation.file_id}/sample_0.mp4"
            response["videos"] = [{"gcsUri": uri, "mimeType": "video/mp4"}]
        else:
            encoded = base64.b64encode(fake_mp4()).decode()
            response["videos"] = [{"bytesBase64Encoded": encoded, "mimeType": "video/mp4"}]
        return response

    def _download(self, file_id: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            megabytes = self._files.get(file_id)
        if megabytes is None:
            return self._error(404, f"File {file_id} not found.")
        return 200, {"Content-Type": "video/mp4"}, padded_mp4(megabytes)

    # ---- ответы

    @staticmethod
    def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(payload).encode()

    def _error(self, code: int, message: str) -> tuple[int, dict[str, str], bytes]:
        details: list[dict[str, Any]] = []
        if code == 429:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{self.retry_after_s}s"}
            )
        if code == 400 and "API key" in message:
            details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"})
        error = {
            "code": code,
            "message": message,
            "status": RPC_STATUS.get(code, "UNKNOWN"),
            "details": details,
        }
        return self._json(code, {"error": error})


_ERROR_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    502: "Bad Gateway.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}


def _inline(png: bytes) -> dict[str, str]:
    return {"mimeType": "image/png", "data": base64.b64encode(png).decode()}


def service_account_info(
    token_uri: str, *, project: str = "test-project", account: str = "bot"
) -> dict[str, str]:
    """JSON сервисного аккаунта с ключом RSA, созданным сейчас: ключей в репозитории нет."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"{account}@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def main() -> None:
    """Отдельный процесс: печатает base_url и обслуживает до SIGTERM/Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-gemini-key")
    parser.add_argument("--hang-s", type=float, default=30.0)
    args = parser.parse_args()
    fake = FakeGemini(api_key=args.api_key, port=args.port, hang_s=args.hang_s)
    print(fake.base_url, flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._closing.set()
        fake._server.server_close()


if __name__ == "__main__":
    main()
