"""Хранилище медиа: локальный диск (встроенная замена) и Supabase Storage (supabase-py).

Ключи детерминированы вызывающим (`jobs/123/0.png`), повторный put — успех. Выбран upsert
(«последняя запись выигрывает»): после падения между put и записью в БД повтор кладёт новые
байты, и объект совпадает с тем, что записано в БД. «Duplicate» (409) от Supabase тоже
считаем успехом (гонка двух загрузок). Ссылки выдаются только после записи в БД — позже
объект по ключу уже не меняется. SDK supabase импортирует только этот модуль, и лениво:
импорт стоит ~0,3–0,7 с, а веб-процессу с локальным хранилищем он не нужен.
"""

from __future__ import annotations

import functools
import mimetypes
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from botapp.providers.base import MediaKind, MediaStorage, ProviderPermanentError, ProviderTransientError

if TYPE_CHECKING:
    from storage3._sync.file_api import SyncBucketProxy
    from storage3.exceptions import StorageApiError
    from storage3.types import FileOptions
    from supabase import Client

__all__ = [
    "LocalMediaStorage",
    "SignedMedia",
    "SignedMediaExpired",
    "SignedMediaInvalid",
    "StorageError",
    "StorageNotFoundError",
    "StorageTransientError",
    "SupabaseMediaStorage",
    "media_storage",
    "open_signed_media",
    "validate_key",
]


class StorageError(ProviderPermanentError):
    """Постоянная ошибка хранилища (неверный ключ, нет доступа, нет бакета): не повторять."""

    category = "storage_error"


class StorageNotFoundError(StorageError):
    """Объекта нет."""

    category = "storage_not_found"


class StorageTransientError(ProviderTransientError):
    """Сеть, таймаут, 408/429/5xx: повторить с паузой."""

    category = "storage_unavailable"


class SignedMediaInvalid(Exception):
    """Подпись ссылки не сходится (подделка, чужой SECRET_KEY): 403."""


class SignedMediaExpired(Exception):
    """Подпись верна, но срок ссылки истёк: 410."""


KINDS: tuple[MediaKind, ...] = ("image", "video")
# Сегмент не начинается с точки: ни «..», ни скрытых файлов; без «\», NUL, «%» и пробелов
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}"
_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,7}}")
_MAX_KEY_LEN = 512
_CONTENT_TYPE_RE = re.compile(r"(image|video)/[a-z0-9][a-z0-9.+-]{0,63}")
_SIGN_SALT = "botapp.providers.storage.signed-media"
# Supabase принимает до 1000 префиксов за один DELETE
_REMOVE_BATCH = 1000
_SIGN_BATCH = 200


def _clock() -> float:
    # Отдельная функция: тест сдвигает время только для ссылок, не для всего процесса
    return time.time()


def validate_key(key: str) -> str:
    """Ключ — относительный путь из безопасных сегментов; иначе StorageError (до диска и сети)."""
    if len(key) > _MAX_KEY_LEN or not _KEY_RE.fullmatch(key):
        raise StorageError(f"недопустимый ключ медиа: {key!r}", category="invalid_key")
    return key


def _validate_kind(kind: str) -> MediaKind:
    for known in KINDS:
        if kind == known:
            return known
    raise StorageError(f"неизвестный вид медиа: {kind!r}", category="invalid_kind")


def _validate_content_type(kind: MediaKind, content_type: str) -> str:
    # Тип обязателен и совпадает с видом: иначе отдали бы text/plain или, хуже, text/html
    if not _CONTENT_TYPE_RE.fullmatch(content_type) or not content_type.startswith(f"{kind}/"):
        raise StorageError(f"тип {content_type!r} не подходит для {kind}", category="invalid_content_type")
    return content_type


# --- Локальный диск ----------------------------------------------------------------------------


def _type_by_extension(kind: str, key: str) -> str:
    """Тип по расширению ключа, если он того же вида (image/…, video/…); иначе пусто."""
    guessed = mimetypes.guess_type(key, strict=True)[0] or ""
    return guessed if guessed.startswith(f"{kind}/") else ""


def _kind_dir(kind: MediaKind) -> str:
    return f"{kind}s"


def _resolve_under(root: Path, *parts: str) -> Path:
    """Путь строго внутри root (вторая линия защиты после validate_key: симлинки и пр.)."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base) or path == base:
        raise StorageError("путь вне каталога медиа", category="invalid_key")
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    """Атомарная замена: читатель видит старый файл или новый целиком, но не половину."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        os.unlink(tmp_name)
        raise


class LocalMediaStorage:
    """Файлы в `<root>/images|videos/<key>`; тип, если он не следует из расширения, — в `<root>/.types/…`.

    Ссылки — `/media/s/<token>`: django.core.signing (SECRET_KEY) с видом, ключом и сроком.
    """

    def __init__(self, *, root: Path, base_url: str = "") -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")

    def _paths(self, kind: str, key: str) -> tuple[Path, Path]:
        media_kind = _validate_kind(kind)
        validate_key(key)
        data = _resolve_under(self.root, _kind_dir(media_kind), key)
        meta = _resolve_under(self.root, ".types", _kind_dir(media_kind), key)
        return data, meta

    def put(self, *, kind: MediaKind, key: str, data: bytes, content_type: str) -> None:
        """Сохранить (повтор перезаписывает). Ошибка диска — временная: место может освободиться."""
        path, meta = self._paths(kind, key)
        _validate_content_type(kind, content_type)
        try:
            if content_type == _type_by_extension(kind, key):
                # Тип читается по расширению ключа (jobs/1/0.png): файл типа не нужен — это вдвое
                # меньше записей с fsync на каждый выход. Прежний файл другого типа убираем
                meta.unlink(missing_ok=True)
            else:
                # Сначала тип: файл без типа отдали бы по расширению, то есть неверно
                _write_atomic(meta, content_type.encode())
            _write_atomic(path, data)
        except OSError as exc:
            raise StorageTransientError(f"запись {key!r}: {exc}") from exc

    def get(self, *, kind: MediaKind, key: str) -> bytes:
        path, _ = self._paths(kind, key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise StorageNotFoundError(f"нет объекта {kind}:{key}") from exc
        except OSError as exc:
            raise StorageTransientError(f"чтение {key!r}: {exc}") from exc

    def signed_url(self, *, kind: MediaKind, key: str, expires_s: int) -> str:
        self._paths(kind, key)
        if expires_s <= 0:
            raise StorageError("срок ссылки должен быть положительным", category="invalid_request")
        token = signing.dumps({"k": kind, "p": key, "x": int(_clock()) + expires_s}, salt=_SIGN_SALT)
        return self.base_url + reverse("media-signed", kwargs={"token": token})

    def signed_urls(self, *, kind: MediaKind, keys: list[str], expires_s: int) -> dict[str, str]:
        return {key: self.signed_url(kind=kind, key=key, expires_s=expires_s) for key in keys}

    def delete(self, *, kind: MediaKind, keys: list[str]) -> None:
        """Удалить; отсутствующие — не ошибка. Пустые каталоги заданий убираем за собой."""
        for key in keys:
            for path in self._paths(kind, key):
                try:
                    path.unlink(missing_ok=True)
                    self._prune_empty_dirs(path.parent)
                except OSError as exc:
                    raise StorageTransientError(f"удаление {key!r}: {exc}") from exc

    def _prune_empty_dirs(self, directory: Path) -> None:
        root = self.root.resolve()
        stop = {root, root / ".types"} | {root / sub / _kind_dir(k) for k in KINDS for sub in ("", ".types")}
        while directory not in stop and directory.is_relative_to(root):
            try:
                directory.rmdir()
            except OSError:
                return  # не пуст (или уже нет) — дальше вверх не идём
            directory = directory.parent


@dataclass(frozen=True)
class SignedMedia:
    """Открытый файл по подписанной ссылке; закрывает его FileResponse."""

    file: IO[bytes]
    content_type: str
    max_age: int


def open_signed_media(token: str, *, root: Path | None = None) -> SignedMedia:
    """Проверить подпись и срок, открыть файл под корнем медиа.

    Raises SignedMediaInvalid (подпись), SignedMediaExpired (срок), StorageNotFoundError
    (файла нет или ключ недопустим: подписанный ключ всё равно проверяем заново).
    """
    try:
        payload = signing.loads(token, salt=_SIGN_SALT)
    except signing.BadSignature as exc:
        raise SignedMediaInvalid(str(exc)) from exc
    if not isinstance(payload, dict):
        raise SignedMediaInvalid("неожиданное содержимое ссылки")
    kind, key, expires_at = payload.get("k"), payload.get("p"), payload.get("x")
    if not (isinstance(kind, str) and isinstance(key, str) and isinstance(expires_at, int)):
        raise SignedMediaInvalid("неожиданное содержимое ссылки")
    remaining = expires_at - int(_clock())
    if remaining <= 0:
        raise SignedMediaExpired(f"ссылка истекла {-remaining} с назад")
    storage = LocalMediaStorage(root=Path(root if root is not None else settings.MEDIA_ROOT))
    try:
        path, meta = storage._paths(kind, key)
    except StorageError as exc:
        raise StorageNotFoundError(str(exc)) from exc
    try:
        file = path.open("rb")
    except OSError as exc:
        raise StorageNotFoundError(f"нет объекта {kind}:{key}") from exc
    try:
        content_type = meta.read_text().strip()
    except FileNotFoundError:
        content_type = _type_by_extension(kind, key)
    except OSError:
        content_type = ""
    if not _CONTENT_TYPE_RE.fullmatch(content_type):
        content_type = "application/octet-stream"
    return SignedMedia(file=file, content_type=content_type, max_age=remaining)


# --- Supabase Storage --------------------------------------------------------------------------


def _http_status(exc: StorageApiError) -> int:
    """Код ответа: HTTP-статус, а если он 400 — statusCode из тела (Supabase кладёт 404/409 туда)."""
    import httpx

    http_status = 0
    if isinstance(exc.__cause__, httpx.HTTPStatusError):
        http_status = exc.__cause__.response.status_code
    try:
        body_status = int(exc.status)
    except (TypeError, ValueError):
        body_status = 0
    if http_status == 400 and body_status:
        return body_status
    return http_status or body_status


def _is_duplicate(exc: StorageApiError) -> bool:
    return _http_status(exc) == 409 or str(exc.code).lower() in {"duplicate", "resourcealreadyexists"}


def _is_missing_object(exc: StorageApiError, status: int) -> bool:
    # Нет бакета — тоже 404, но это ошибка настройки, а не «объекта нет»
    code = str(exc.code).lower()
    if "bucket" in code or "bucket" in str(exc.message).lower():
        return False
    return status == 404 or code in {"not_found", "nosuchkey"}


def _translate(exc: Exception, what: str) -> Exception:
    """Ошибки SDK и httpx → наши: сеть/429/5xx временные, остальное постоянное."""
    import httpx
    from storage3.exceptions import StorageApiError

    if isinstance(exc, httpx.TransportError):
        return StorageTransientError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, StorageApiError):
        status = _http_status(exc)
        message = f"{what}: {status} {exc.code}: {exc.message}"
        if status in (408, 429) or status >= 500:
            return StorageTransientError(message)
        if _is_missing_object(exc, status):
            return StorageNotFoundError(message)
        return StorageError(message, category="forbidden" if status in (401, 403) else None)
    return StorageError(f"{what}: {type(exc).__name__}: {exc}")


@functools.lru_cache(maxsize=8)
def _supabase_client(url: str, service_key: str, timeout_s: float, pid: int) -> Client:
    # pid в ключе кэша: клиент (пул соединений httpx) не переживает fork воркера
    import httpx
    from supabase import create_client
    from supabase.lib.client_options import SyncClientOptions

    # Свой httpx.Client: таймаут без устаревшего параметра storage3 и без его предупреждения
    http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)))
    return create_client(url, service_key, options=SyncClientOptions(httpx_client=http))


@contextmanager
def _sdk_errors(what: str) -> Iterator[None]:
    """Наружу из адаптера выходят только наши исключения."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        raise _translate(exc, what) from exc


class SupabaseMediaStorage:
    """Бакеты Supabase Storage через supabase-py: картинки и видео — в разных бакетах."""

    def __init__(
        self, *, url: str, service_key: str, buckets: Mapping[MediaKind, str], timeout_s: float = 20.0
    ) -> None:
        self._url, self._key, self._timeout_s = url, service_key, timeout_s
        self.buckets = dict(buckets)

    def _bucket(self, kind: str) -> SyncBucketProxy:
        client = _supabase_client(self._url, self._key, self._timeout_s, os.getpid())
        return client.storage.from_(self.buckets[_validate_kind(kind)])

    def put(self, *, kind: MediaKind, key: str, data: bytes, content_type: str) -> None:
        """Загрузить с upsert; «Duplicate» (409, гонка двух загрузок) — тоже успех."""
        validate_key(key)
        _validate_content_type(kind, content_type)
        from storage3.exceptions import StorageApiError

        bucket = self._bucket(kind)
        options: FileOptions = {"content-type": content_type, "cache-control": "86400", "upsert": "true"}
        with _sdk_errors(f"upload {kind}:{key}"):
            try:
                bucket.upload(key, data, options)
            except StorageApiError as exc:
                if not _is_duplicate(exc):
                    raise

    def get(self, *, kind: MediaKind, key: str) -> bytes:
        validate_key(key)
        bucket = self._bucket(kind)
        with _sdk_errors(f"download {kind}:{key}"):
            data = bucket.download(key)
        return data

    def signed_url(self, *, kind: MediaKind, key: str, expires_s: int) -> str:
        validate_key(key)
        if expires_s <= 0:
            raise StorageError("срок ссылки должен быть положительным", category="invalid_request")
        bucket = self._bucket(kind)
        with _sdk_errors(f"sign {kind}:{key}"):
            url = bucket.create_signed_url(key, expires_s)["signedURL"]
        if not url:
            raise StorageError(f"sign {kind}:{key}: пустая ссылка в ответе")
        return url

    def signed_urls(self, *, kind: MediaKind, keys: list[str], expires_s: int) -> dict[str, str]:
        """Один запрос на пачку: страница панели с сотней миниатюр — не сотня запросов подряд."""
        for key in keys:
            validate_key(key)
        if expires_s <= 0:
            raise StorageError("срок ссылки должен быть положительным", category="invalid_request")
        bucket = self._bucket(kind)
        urls: dict[str, str] = {}
        for start in range(0, len(keys), _SIGN_BATCH):
            with _sdk_errors(f"sign {kind}: {len(keys)} ключей"):
                signed = bucket.create_signed_urls(keys[start : start + _SIGN_BATCH], expires_s)
            # Объекта нет — Supabase отвечает на этот путь ошибкой, не всей пачке
            urls.update({item["path"]: item["signedURL"] for item in signed if item["signedURL"]})
        return urls

    def delete(self, *, kind: MediaKind, keys: list[str]) -> None:
        """Удалить пачками; отсутствующие ключи Supabase молча пропускает."""
        for key in keys:
            validate_key(key)
        bucket = self._bucket(kind)
        for start in range(0, len(keys), _REMOVE_BATCH):
            with _sdk_errors(f"remove {kind}: {len(keys)} ключей"):
                bucket.remove(keys[start : start + _REMOVE_BATCH])


# --- Выбор по настройкам -----------------------------------------------------------------------


def media_storage() -> MediaStorage:
    """Хранилище по settings.MEDIA_STORAGE_BACKEND: "supabase" или "local" (встроенная замена)."""
    backend = settings.MEDIA_STORAGE_BACKEND
    if backend == "local":
        # Ссылка уходит в Telegram: относительная там не откроется
        base_url = settings.PUBLIC_BASE_URL or settings.LOCAL_BASE_URL
        return LocalMediaStorage(root=Path(settings.MEDIA_ROOT), base_url=base_url)
    if backend == "supabase":
        missing = [
            name
            for name in (
                "SUPABASE_URL",
                "SUPABASE_SERVICE_ROLE_KEY",
                "SUPABASE_BUCKET",
                "SUPABASE_VIDEO_BUCKET",
            )
            if not getattr(settings, name, "")
        ]
        if missing:
            raise ImproperlyConfigured(f"MEDIA_STORAGE_BACKEND=supabase, но не заданы: {', '.join(missing)}")
        return SupabaseMediaStorage(
            url=settings.SUPABASE_URL,
            service_key=settings.SUPABASE_SERVICE_ROLE_KEY,
            buckets={"image": settings.SUPABASE_BUCKET, "video": settings.SUPABASE_VIDEO_BUCKET},
            timeout_s=float(getattr(settings, "SUPABASE_TIMEOUT_S", 20.0)),
        )
    raise ImproperlyConfigured(f"MEDIA_STORAGE_BACKEND={backend!r}: ожидалось 'supabase' или 'local'")
