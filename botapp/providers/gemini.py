"""Адаптер Gemini (картинки «Nano Banana») и Veo (видео) поверх google-genai 3.x.

Только этот модуль (и veo_rest) знает про SDK и HTTP: наружу — dataclass из base и наши
исключения. Повторов внутри нет: единственный слой повторов — задача Celery, поэтому у SDK
явно attempts=1, а каждый вызов ограничен своим таймаутом.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import httpx2
from django.conf import settings
from google.auth import exceptions as auth_errors
from google.genai import Client, types
from google.genai import errors as genai_errors
from PIL import Image, UnidentifiedImageError

from botapp.ops import metrics
from botapp.providers.base import (
    ImageOutput,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ReferenceImage,
    VideoPoll,
)
from botapp.providers.veo_rest import VeoRestClient, classify_http_status, retry_delay_from_details

logger = logging.getLogger(__name__)

API_VERSION = "v1beta"
GEMINI_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
# Умолчание SDK 3.x для Vertex (_api_client.BaseApiClient); передаём явно, чтобы не зависеть от
# GOOGLE_GENAI_API_VERSION в окружении
VERTEX_API_VERSION = "v1beta1"
# Лимит Google на одну инлайн-картинку — 7 МБ; берём десятичные мегабайты с запасом
MAX_REFERENCE_BYTES = 7_000_000
ACCEPTED_REFERENCE_MIME = {"image/png", "image/jpeg", "image/webp"}
# Реальные размеры Gemini кратны 16–64 px: 4:3 в 1K — 1184×864 (≈2,8 % от точного)
ASPECT_TOLERANCE = 0.05

SAFETY_REASONS = {
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
    "JAILBREAK",
}


# ---------------------------------------------------------------------------------------------
# Классификация ошибок на границе


def _retry_after(exc: genai_errors.APIError) -> float | None:
    """Пауза из заголовка Retry-After или из google.rpc.RetryInfo ("30s") в details."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return float(value)
        except ValueError:
            pass
    return retry_delay_from_details(exc.details)


@contextmanager
def classified_errors(what: str) -> Iterator[None]:
    """Любая ошибка SDK/транспорта превращается в наш Transient/Permanent с категорией."""
    try:
        yield
    except ProviderError:
        raise
    except genai_errors.APIError as exc:
        message = f"{what}: {exc.code} {exc.status or ''} {exc.message or ''}".strip()
        raise classify_http_status(int(exc.code or 0), message, retry_after=_retry_after(exc)) from exc
    except auth_errors.RefreshError as exc:
        # Vertex: токен сервисного аккаунта не выдан. Отозванный ключ — не лечится повтором,
        # 5xx/server_error у token_uri (google-auth помечает retryable) — временно
        message = f"{what}: токен Vertex ({exc})"
        if exc.retryable:
            raise ProviderTransientError(message, category="provider_unavailable") from exc
        raise ProviderPermanentError(message, category="forbidden") from exc
    except auth_errors.TransportError as exc:
        message = f"{what}: сеть при получении токена ({exc!r})"
        raise ProviderTransientError(message, category="connection") from exc
    except (httpx2.TimeoutException, httpx.TimeoutException) as exc:
        raise ProviderTransientError(f"{what}: таймаут ({exc!r})", category="timeout") from exc
    except (httpx2.TransportError, httpx.TransportError, ConnectionError) as exc:
        raise ProviderTransientError(f"{what}: сеть ({exc!r})", category="connection") from exc


# ---------------------------------------------------------------------------------------------
# Картинки: подготовка референсов и проверка результата


def parse_aspect_ratio(aspect_ratio: str) -> float:
    try:
        width, height = (float(part) for part in aspect_ratio.split(":"))
    except ValueError as exc:
        raise ProviderPermanentError(
            f"соотношение сторон {aspect_ratio!r}", category="invalid_request"
        ) from exc
    if width <= 0 or height <= 0:
        raise ProviderPermanentError(f"соотношение сторон {aspect_ratio!r}", category="invalid_request")
    return width / height


def ratio_matches(width: int, height: int, aspect_ratio: str) -> bool:
    expected = parse_aspect_ratio(aspect_ratio)
    return abs(width / height - expected) / expected <= ASPECT_TOLERANCE


def fit_reference(ref: ReferenceImage, *, limit: int = MAX_REFERENCE_BYTES) -> ReferenceImage:
    """Референс больше лимита или в чужом формате перекодируем, а не отвергаем (требование задачи)."""
    if len(ref.data) <= limit and ref.mime_type in ACCEPTED_REFERENCE_MIME:
        return ref
    try:
        image: Image.Image = Image.open(io.BytesIO(ref.data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ProviderPermanentError("референс не читается как картинка", category="invalid_request") from exc
    if image.mode not in ("RGB", "L"):
        # JPEG без альфы: прозрачное — на белом, как увидит пользователь в Telegram
        background = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    quality = 90
    while True:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= limit:
            return ReferenceImage(data=out.getvalue(), mime_type="image/jpeg")
        # Уменьшаем площадь пропорционально перебору и ещё на 10 %
        scale = min(0.9, (limit / out.tell()) ** 0.5 * 0.9)
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
        quality = 85


def _image_parts(response: types.GenerateContentResponse) -> list[types.Blob]:
    candidate = response.candidates[0] if response.candidates else None
    parts = candidate.content.parts if candidate and candidate.content else None
    return [
        part.inline_data
        for part in parts or []
        # Промежуточные «мысли» Gemini 3 Pro Image — не результат
        if part.inline_data and part.inline_data.data and not part.thought
    ]


def image_from_response(response: types.GenerateContentResponse, *, aspect_ratio: str) -> ImageOutput:
    """Последняя не-«мысленная» картинка ответа; блокировки и пустые ответы — постоянные ошибки."""
    feedback = response.prompt_feedback
    if feedback and feedback.block_reason:
        reason = _enum_name(feedback.block_reason)
        raise ProviderPermanentError(f"запрос заблокирован: {reason}", category="safety")
    candidate = response.candidates[0] if response.candidates else None
    if candidate is None:
        raise ProviderPermanentError("ответ без кандидатов", category="no_image")
    finish = _enum_name(candidate.finish_reason) if candidate.finish_reason else "STOP"
    if finish in SAFETY_REASONS:
        raise ProviderPermanentError(f"результат заблокирован: {finish}", category="safety")
    blobs = _image_parts(response)
    if not blobs:
        text = " ".join(p.text or "" for p in (candidate.content.parts if candidate.content else None) or [])
        raise ProviderPermanentError(
            f"модель не вернула картинку ({finish}): {text[:200]}", category="no_image"
        )
    blob = blobs[-1]
    data = bytes(blob.data or b"")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height, fmt = image.width, image.height, image.format
    except (UnidentifiedImageError, OSError) as exc:
        raise ProviderPermanentError("картинка в ответе не читается", category="no_image") from exc
    if not ratio_matches(width, height, aspect_ratio):
        raise ProviderPermanentError(
            f"модель вернула {width}×{height} вместо {aspect_ratio}", category="wrong_aspect_ratio"
        )
    mime = blob.mime_type or Image.MIME.get(fmt or "", "image/png")
    return ImageOutput(data=data, mime_type=mime, width=width, height=height)


def _enum_name(value: object) -> str:
    name = getattr(value, "name", None) or getattr(value, "value", None) or str(value)
    return str(name).upper()


# ---------------------------------------------------------------------------------------------
# Видео: разбор операции (общий для REST и SDK)


def video_poll_from_operation(operation: dict[str, Any]) -> tuple[bool, str | None, bytes | None]:
    """(done, uri, bytes) из JSON операции Veo; ошибки и фильтр — исключениями."""
    if not operation.get("done"):
        return False, None, None
    error = operation.get("error")
    if error:
        raise classify_operation_error(error)
    response = operation.get("response") or {}
    video_response = response.get("generateVideoResponse") or response
    samples = video_response.get("generatedSamples") or video_response.get("videos") or []
    for sample in samples:
        video = sample.get("video", sample) if isinstance(sample, dict) else {}
        if video.get("uri") or video.get("encodedVideo") or video.get("bytesBase64Encoded"):
            encoded = video.get("encodedVideo") or video.get("bytesBase64Encoded")
            return True, video.get("uri"), _b64decode(encoded) if encoded else None
    filtered = video_response.get("raiMediaFilteredCount") or 0
    reasons = video_response.get("raiMediaFilteredReasons") or []
    if filtered or reasons:
        raise ProviderPermanentError(f"видео отфильтровано: {reasons}", category="video_filtered")
    raise ProviderPermanentError("операция завершилась без видео", category="no_video")


# Коды google.rpc: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 7 PERMISSION_DENIED, 16 UNAUTHENTICATED
_PERMANENT_RPC = {3: "invalid_request", 5: "not_found", 7: "forbidden", 9: "invalid_request", 16: "forbidden"}


def classify_operation_error(error: dict[str, Any]) -> ProviderError:
    """Ошибка завершённой операции — всегда окончательная для задания.

    Переопрашивать завершённую операцию бесполезно, а запускать заново задание с операцией
    нельзя (двойная оплата провайдеру): холд возвращается, пользователь узнаёт причину.
    """
    code = int(error.get("code") or 0)
    message = f"операция Veo: {code} {error.get('message', '')}"
    if code in _PERMANENT_RPC:
        return ProviderPermanentError(message, category=_PERMANENT_RPC[code])
    return ProviderPermanentError(message, category="video_failed")


def _b64decode(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    return base64.b64decode(padded.replace("-", "+").replace("_", "/"))


# ---------------------------------------------------------------------------------------------
# Сам адаптер


class GeminiProvider:
    """GenerationProvider для Gemini API (ключ) или Vertex AI. Потокобезопасен, один на процесс."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        use_vertex: bool = False,
        project: str = "",
        location: str = "global",
        credentials_file: str = "",
        credentials_json: str = "",
    ) -> None:
        self.use_vertex = use_vertex
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        # SDK сам ретраит только при переданных retry_options; attempts=1 фиксирует «без повторов»
        http_options = types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1))
        if use_vertex:
            # Всё явно: иначе SDK возьмёт GOOGLE_VERTEX_BASE_URL / GOOGLE_GENAI_API_VERSION из окружения
            http_options.base_url = vertex_base_url(self.base_url, location if project else "global")
            http_options.api_version = VERTEX_API_VERSION
            credentials = _vertex_credentials(credentials_file, credentials_json)
            if project:
                self.client = Client(
                    vertexai=True,
                    project=project,
                    location=location or "global",
                    credentials=credentials,
                    http_options=http_options,
                )
            elif api_key:
                # Vertex express: только ключ, без проекта
                self.client = Client(vertexai=True, api_key=api_key, http_options=http_options)
            else:
                # С явным base_url SDK сам это не проверяет и слал бы запросы без авторизации
                raise ValueError("USE_VERTEX_AI: нужен GOOGLE_CLOUD_PROJECT или GEMINI_API_KEY (express)")
            self.veo_rest: VeoRestClient | None = None
        else:
            # Всё явно: иначе SDK подхватит GOOGLE_API_KEY / GOOGLE_GEMINI_BASE_URL / v1 по умолчанию
            http_options.base_url = self.base_url
            http_options.api_version = API_VERSION
            self.client = Client(vertexai=False, api_key=api_key, http_options=http_options)
            self.veo_rest = VeoRestClient(api_key=api_key, base_url=self.base_url, api_version=API_VERSION)

    @classmethod
    def from_settings(cls) -> GeminiProvider:
        return cls(
            api_key=settings.GEMINI_API_KEY,
            base_url=settings.GEMINI_API_BASE_URL,
            use_vertex=bool(settings.USE_VERTEX_AI),
            project=settings.GOOGLE_CLOUD_PROJECT,
            location=settings.GOOGLE_CLOUD_LOCATION,
            credentials_file=settings.GOOGLE_APPLICATION_CREDENTIALS,
            credentials_json=settings.GOOGLE_APPLICATION_CREDENTIALS_JSON,
        )

    @staticmethod
    def _call_options(timeout_s: float) -> types.HttpOptions:
        return types.HttpOptions(
            timeout=max(1, int(timeout_s * 1000)),
            retry_options=types.HttpRetryOptions(attempts=1),
        )

    @metrics.provider_timed("generate_image")
    def generate_image(
        self,
        *,
        model_id: str,
        prompt: str,
        references: list[ReferenceImage],
        aspect_ratio: str,
        image_size: str,
        timeout_s: float,
    ) -> ImageOutput:
        parse_aspect_ratio(aspect_ratio)  # мусор не отправляем в Google
        contents: list[Any] = [prompt]
        for ref in references:
            fitted = fit_reference(ref)
            contents.append(types.Part.from_bytes(data=fitted.data, mime_type=fitted.mime_type))
        image_config = types.ImageConfig(aspect_ratio=aspect_ratio, image_size=image_size or None)
        config = types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=image_config,
            http_options=self._call_options(timeout_s),
        )
        with classified_errors("generateContent"):
            response = self.client.models.generate_content(model=model_id, contents=contents, config=config)
        return image_from_response(response, aspect_ratio=aspect_ratio)

    @metrics.provider_timed("submit_video")
    def submit_video(
        self,
        *,
        model_id: str,
        prompt: str,
        image: ReferenceImage | None,
        duration_s: int,
        resolution: str,
        aspect_ratio: str,
        negative_prompt: str,
        timeout_s: float,
    ) -> str:
        first_frame = fit_reference(image) if image else None
        if self.veo_rest is not None:
            return self.veo_rest.submit(
                model_id=model_id,
                prompt=prompt,
                image=first_frame,
                duration_s=duration_s,
                resolution=resolution,
                aspect_ratio=aspect_ratio,
                negative_prompt=negative_prompt,
                timeout_s=timeout_s,
            )
        source = types.GenerateVideosSource(
            prompt=prompt,
            image=types.Image(image_bytes=first_frame.data, mime_type=first_frame.mime_type)
            if first_frame
            else None,
        )
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=duration_s,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt or None,
            http_options=self._call_options(timeout_s),
        )
        with classified_errors("generateVideos"):
            operation = self.client.models.generate_videos(model=model_id, source=source, config=config)
        if not operation.name:
            raise ProviderTransientError("Vertex не вернул имя операции", category="provider_unavailable")
        return operation.name

    @metrics.provider_timed("poll_video")
    def poll_video(self, *, operation_name: str, timeout_s: float) -> VideoPoll:
        if self.veo_rest is not None:
            operation = self.veo_rest.get_operation(operation_name, timeout_s=timeout_s)
            done, uri, data = video_poll_from_operation(operation)
            if not done:
                return VideoPoll(done=False, meta={"operation": operation_name})
            if data is None:
                if not uri:
                    raise ProviderPermanentError("операция без ссылки на видео", category="no_video")
                data = self.veo_rest.download(uri, timeout_s=timeout_s)
            return VideoPoll(done=True, data=data, meta={"operation": operation_name, "uri": uri or ""})
        return self._poll_vertex(operation_name, timeout_s)

    def _poll_vertex(self, operation_name: str, timeout_s: float) -> VideoPoll:
        with classified_errors("operations.get"):
            operation = self.client.operations.get(
                types.GenerateVideosOperation.model_validate({"name": operation_name}),
                config=types.GetOperationConfig(http_options=self._call_options(timeout_s)),
            )
        if not operation.done:
            return VideoPoll(done=False, meta={"operation": operation_name})
        if operation.error:
            raise classify_operation_error(dict(operation.error))
        result = operation.response or operation.result
        videos = (result.generated_videos if result else None) or []
        for generated in videos:
            video = generated.video
            if video and video.video_bytes:
                return VideoPoll(
                    done=True,
                    data=video.video_bytes,
                    mime_type=video.mime_type or "video/mp4",
                    meta={"operation": operation_name},
                )
        if result and (result.rai_media_filtered_count or result.rai_media_filtered_reasons):
            reasons = json.dumps(result.rai_media_filtered_reasons or [], ensure_ascii=False)
            raise ProviderPermanentError(f"видео отфильтровано: {reasons}", category="video_filtered")
        # Без output_gcs_uri Vertex отдаёт байты; files.download на Vertex не работает
        raise ProviderPermanentError("Vertex вернул видео без байтов", category="no_video")


def vertex_base_url(base_url: str, location: str) -> str:
    """Свой GEMINI_API_BASE_URL (локальный сервер, прокси) или адрес Vertex, как его выбирает SDK 3.x."""
    base_url = base_url.rstrip("/")
    if base_url and not base_url.startswith(GEMINI_DEFAULT_BASE_URL):  # адрес Gemini API — не Vertex
        return base_url
    if not location or location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):  # мультирегионы — отдельные домены .rep
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _vertex_credentials(credentials_file: str, credentials_json: str) -> Any:
    """Сервисный аккаунт из JSON в переменной или из файла; иначе ADC (None — пусть SDK найдёт сам)."""
    if not (credentials_json or credentials_file):
        return None
    from google.oauth2 import service_account

    scopes = ["https://www.googleapis.com/auth/cloud-platform"]
    if credentials_json:
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            json.loads(credentials_json), scopes=scopes
        )
    return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        credentials_file, scopes=scopes
    )


__all__ = [
    "GeminiProvider",
    "classify_http_status",
    "fit_reference",
    "image_from_response",
    "ratio_matches",
    "vertex_base_url",
    "video_poll_from_operation",
]
