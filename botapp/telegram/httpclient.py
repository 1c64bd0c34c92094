"""Клиент Bot API для веба и воркеров: BaseRequest PTB поверх aiohttp.

Почему не HTTPXRequest: в профиле вебхука httpx + httpcore + anyio занимали ~40 % CPU процесса (сборка
Request/Response, куки, обход всех соединений пула перед каждым запросом, слои anyio). У aiohttp разбор
ответа на C и keep-alive пул без этих обходов; свой HTTP-клиент держать не нужно. Ошибки — как у
HTTPXRequest: таймауты — TimedOut, прочие ошибки клиента — NetworkError. Повторов нет: упавший запрос
поднимается в PTB. Ответ 413 — UploadTooLarge (PTB сделал бы из него NetworkError, и доставка повторяла бы
ту же загрузку до предела DELIVERY_GIVE_UP_S).
"""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_FORM = "application/x-www-form-urlencoded"


class UploadTooLarge(BadRequest):
    """Telegram не принял файл по размеру (HTTP 413): повтор того же файла не поможет."""


def _sum(*parts: float | None) -> float | None:
    total = 0.0
    for part in parts:
        if part is None:
            return None
        total += part
    return total


class AiohttpRequest(BaseRequest):
    """Одна aiohttp.ClientSession на объект (а объект — на приложение PTB, т. е. на цикл событий).

    Таймауты — как у HTTPXRequest: read — ожидание данных ответа, connect — установка соединения,
    pool — ожидание свободного соединения. Отдельного таймаута записи в aiohttp нет: write (для файлов —
    media_write_timeout) ограничивает его через общий предел запроса — сумму всех четырёх.
    """

    __slots__ = ("_media_write_timeout", "_pool_size", "_session", "_timeouts")

    def __init__(
        self,
        *,
        pool_size: int,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = pool_size
        self._timeouts = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts[0]

    async def initialize(self) -> None:
        # Сессия привязана к циклу событий: создаём её внутри него, а не в __init__
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                # Bot API куки не ставит; пустая банка — без лишней работы на каждый ответ
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        default_read, default_write, default_connect, default_pool = self._timeouts
        if files:
            default_write = self._media_write_timeout
        read_s = default_read if isinstance(read_timeout, DefaultValue) else read_timeout
        write_s = default_write if isinstance(write_timeout, DefaultValue) else write_timeout
        connect_s = default_connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool_s = default_pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        timeout = aiohttp.ClientTimeout(
            total=_sum(pool_s, connect_s, write_s, read_s),
            # connect в aiohttp — получение соединения целиком: ожидание в пуле и установка
            connect=_sum(pool_s, connect_s),
            sock_connect=connect_s,
            sock_read=read_s,
        )
        data: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        if request_data is not None and files:
            form = aiohttp.FormData(default_to_multipart=True)
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in request_data.multipart_data.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            data = form
        elif request_data is not None:
            # Готовая строка формы дешевле, чем FormData из словаря
            data = request_data.url_encoded_parameters().encode()
            headers = {"Content-Type": _FORM}
        try:
            async with session.request(method, url, data=data, headers=headers, timeout=timeout) as response:
                status, payload = response.status, await response.read()
        except TimeoutError as exc:  # ServerTimeoutError и ConnectionTimeoutError — тоже TimeoutError
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
        if status == 413:
            raise UploadTooLarge("Request Entity Too Large")
        return status, payload
