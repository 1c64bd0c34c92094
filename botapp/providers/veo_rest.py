"""Три REST-вызова Veo для режима API-ключа (google-genai 3.x отказывает generate_videos без Vertex).

predictLongRunning → имя операции → GET операции → скачивание файла. Формы полей — API_NOTES §1.8.
Повторов нет: их делает задача; здесь только классификация ошибок.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from botapp.providers.base import (
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ReferenceImage,
)

TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
UNAVAILABLE = "provider_unavailable"
# Из URI вида https://generativelanguage.googleapis.com/v1beta/files/<id>:download?alt=media
_FILE_ID = re.compile(r"files/([a-z0-9]+)")


def retry_delay_from_details(details: Any) -> float | None:
    """google.rpc.RetryInfo.retryDelay ("30s") из тела ошибки Google."""
    error = details.get("error", details) if isinstance(details, dict) else None
    items = error.get("details") if isinstance(error, dict) else None
    for item in items if isinstance(items, list) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                continue
    return None


def classify_http_status(code: int, message: str, *, retry_after: float | None = None) -> ProviderError:
    """HTTP-код Google → наш класс ошибки с категорией."""
    if code in TRANSIENT_HTTP:
        category = "rate_limited" if code == 429 else "provider_unavailable"
        return ProviderTransientError(message, category=category, retry_after=retry_after)
    if code in (401, 403):
        return ProviderPermanentError(message, category="forbidden")
    if code == 404:
        return ProviderPermanentError(message, category="not_found")
    return ProviderPermanentError(message, category="invalid_request")


def _error_from_response(what: str, response: httpx.Response) -> ProviderError:
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    message = f"{what}: {response.status_code} {error.get('status', '')} {error.get('message', '')}".strip()
    retry_after: float | None = None
    header = response.headers.get("retry-after")
    if header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    if retry_after is None:
        retry_after = retry_delay_from_details(body)
    return classify_http_status(response.status_code, message, retry_after=retry_after)


class VeoRestClient:
    """Синхронный httpx-клиент (потокобезопасен); таймаут — на каждый вызов."""

    def __init__(self, *, api_key: str, base_url: str, api_version: str = "v1beta") -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._api_key = api_key
        # Редиректы скачивания обрабатываем сами: ключ не должен уйти на чужой хост
        self._http = httpx.Client(follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def _send(self, what: str, method: str, url: str, *, timeout_s: float, **kwargs: Any) -> httpx.Response:
        host = urlsplit(url).hostname or ""
        own = host == urlsplit(self.base_url).hostname or host.endswith(".googleapis.com")
        headers = {"x-goog-api-key": self._api_key} if own else {}
        try:
            response = self._http.request(method, url, timeout=timeout_s, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderTransientError(f"{what}: таймаут ({exc!r})", category="timeout") from exc
        except httpx.TransportError as exc:
            raise ProviderTransientError(f"{what}: сеть ({exc!r})", category="connection") from exc
        if response.status_code >= 400:
            raise _error_from_response(what, response)
        return response

    def _json(self, what: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderTransientError(f"{what}: ответ не JSON", category=UNAVAILABLE) from exc
        if not isinstance(body, dict):
            raise ProviderTransientError(f"{what}: ответ не объект", category=UNAVAILABLE)
        return body

    def submit(
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
        """POST models/{model}:predictLongRunning; вернуть имя операции."""
        instance: dict[str, Any] = {"prompt": prompt}
        if image is not None:
            # Здесь стандартный base64 и bytesBase64Encoded (inlineData Veo отвергает)
            instance["image"] = {
                "bytesBase64Encoded": base64.b64encode(image.data).decode("ascii"),
                "mimeType": image.mime_type,
            }
        parameters: dict[str, Any] = {
            "sampleCount": 1,
            "durationSeconds": int(duration_s),
            "aspectRatio": aspect_ratio,
            "resolution": resolution,
        }
        if negative_prompt:
            parameters["negativePrompt"] = negative_prompt
        url = f"{self.base_url}/{self.api_version}/models/{model_id}:predictLongRunning"
        response = self._send(
            "predictLongRunning",
            "POST",
            url,
            timeout_s=timeout_s,
            json={"instances": [instance], "parameters": parameters},
        )
        name = self._json("predictLongRunning", response).get("name")
        if not isinstance(name, str) or not name:
            raise ProviderTransientError("predictLongRunning: нет имени операции", category=UNAVAILABLE)
        return name

    def get_operation(self, operation_name: str, *, timeout_s: float) -> dict[str, Any]:
        """GET {ver}/{operation_name} — сырой JSON операции."""
        url = f"{self.base_url}/{self.api_version}/{operation_name.lstrip('/')}"
        return self._json("operations.get", self._send("operations.get", "GET", url, timeout_s=timeout_s))

    def download_url(self, uri: str) -> str:
        """Как SDK: id файла из URI, скачиваем с нашего base_url (локальный сервер, прокси)."""
        match = _FILE_ID.search(uri)
        if match:
            return f"{self.base_url}/{self.api_version}/files/{match.group(1)}:download?alt=media"
        if "alt=media" not in uri:
            uri += ("&" if "?" in uri else "?") + "alt=media"
        return uri

    def download(self, uri: str, *, timeout_s: float) -> bytes:
        url = self.download_url(uri)
        for _ in range(5):
            response = self._send("files.download", "GET", url, timeout_s=timeout_s)
            if response.is_redirect and response.headers.get("location"):
                # Подписанная ссылка хранилища: ключ туда не нужен и не передаётся
                url = str(httpx.URL(url).join(response.headers["location"]))
                continue
            if not response.content:
                raise ProviderTransientError("files.download: пустой ответ", category=UNAVAILABLE)
            return response.content
        raise ProviderTransientError("files.download: слишком много редиректов", category=UNAVAILABLE)
