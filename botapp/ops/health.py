"""Глубокая проверка здоровья (ARCHITECTURE §7 «Health levels»).

Каждая проверка идёт в своём потоке с бюджетом времени; зависшая зависимость
даёт `timeout`, а не зависший ответ. Результат кэшируется на пару секунд и
считается одним потоком за раз, так что шквал запросов не плодит соединений.
Ни одна деталь не содержит секретов или внутренних имён хостов.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from botapp.ops import heartbeats
from botapp.ops.celery_signals import PUBLISHED_AT_HEADER

OK, DEGRADED, DOWN = "ok", "degraded", "down"
# Статусы отдельных проверок
FAIL, TIMEOUT, WARN, INFO = "fail", "timeout", "warn", "info"

CHECK_BUDGET_S = 0.6

CheckResult = dict[str, Any]

_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="health")
_pending: dict[str, Future[CheckResult]] = {}
_compute_lock = threading.Lock()
_cached: tuple[float, dict[str, Any]] | None = None
_http_lock = threading.Lock()
_http_client: Any = None


def _http() -> Any:
    """Один httpx.Client на процесс: соединение с Supabase и Telegram живёт между проверками.

    Новое TLS-соединение на каждую проверку порой дольше бюджета (0,6 с) — и отчёт мигал бы
    «degraded» на пустом месте.
    """
    global _http_client
    with _http_lock:
        if _http_client is None:
            import httpx

            _http_client = httpx.Client(timeout=CHECK_BUDGET_S * 2)
        return _http_client


def _error(exc: BaseException) -> CheckResult:
    # Только имя класса: сообщения драйверов содержат адреса серверов
    return {"status": FAIL, "detail": type(exc).__name__}


def check_database() -> CheckResult:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"status": OK, "vendor": connection.vendor}
    finally:
        connection.close()


_redis_client: Any = None


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=CHECK_BUDGET_S * 2, socket_connect_timeout=CHECK_BUDGET_S * 2
        )
    return _redis_client


def _broker_dir() -> Path:
    return Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))


def check_broker() -> CheckResult:
    if settings.REDIS_URL:
        _redis().ping()
        return {"status": OK, "transport": "redis"}
    folder = _broker_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return {"status": OK, "transport": "filesystem"}


def check_workers() -> CheckResult:
    age = heartbeats.heartbeat_age(component=heartbeats.WORKER)
    limit = settings.WORKER_HEARTBEAT_MAX_AGE_S
    if age is None:
        return {"status": FAIL, "detail": "no worker heartbeat", "heartbeat_age_s": None}
    status = OK if age <= limit else FAIL
    return {"status": status, "heartbeat_age_s": round(age, 1), "max_age_s": limit}


def check_beat() -> CheckResult:
    age = heartbeats.heartbeat_age(component=heartbeats.BEAT)
    limit = 2 * settings.BEAT_TICK_INTERVAL_S
    if age is None:
        return {"status": WARN, "detail": "no beat tick", "tick_age_s": None}
    return {"status": OK if age <= limit else WARN, "tick_age_s": round(age, 1), "max_age_s": limit}


def _queue_stats_redis(queue: str) -> tuple[int, float | None]:
    key = f"{settings.REDIS_KEY_PREFIX}celery:{queue}"
    client = _redis()
    depth = int(client.llen(key))
    oldest = client.lindex(key, -1) if depth else None
    published = None
    if oldest:
        headers = json.loads(oldest).get("headers") or {}
        published = headers.get(PUBLISHED_AT_HEADER)
    return depth, (time.time() - float(published)) if published else None


def _queue_stats_filesystem(queue: str) -> tuple[int, float | None]:
    files = list(_broker_dir().glob(f"*.{queue}.msg"))
    if not files:
        return 0, None
    return len(files), time.time() - min(f.stat().st_mtime for f in files)


def check_queues() -> CheckResult:
    stats = _queue_stats_redis if settings.REDIS_URL else _queue_stats_filesystem
    queues: dict[str, Any] = {}
    late: list[str] = []
    for queue in settings.CELERY_QUEUE_NAMES:
        depth, oldest_age = stats(queue)
        sla = settings.QUEUE_SLA_S[queue]
        queues[queue] = {"depth": depth, "oldest_age_s": None if oldest_age is None else round(oldest_age, 1)}
        if oldest_age is not None and oldest_age > sla:
            late.append(queue)
    result: CheckResult = {"status": WARN if late else OK, "queues": queues}
    if late:
        result["detail"] = "past SLA: " + ", ".join(late)
    return result


def check_storage() -> CheckResult:
    if settings.MEDIA_STORAGE_BACKEND == "supabase":
        key = settings.SUPABASE_SERVICE_ROLE_KEY
        response = _http().get(
            f"{settings.SUPABASE_URL}/storage/v1/bucket/{settings.SUPABASE_BUCKET}",
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
        )
        ok = response.status_code == 200
        return {"status": OK if ok else WARN, "backend": "supabase", "http_status": response.status_code}
    root = Path(settings.MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    probe = root / ".health-probe"
    probe.write_bytes(b"ok")
    probe.unlink()
    return {"status": OK, "backend": "local"}


def _webhook_info() -> dict[str, Any]:
    """getWebhookInfo с кэшем: Telegram не нужно дёргать на каждую проверку.

    Прямой вызов Bot API, без PTB Bot: тому нужен лишний getMe при инициализации.
    """
    from django.core.cache import cache

    cached = cache.get("health:webhook-info")
    if isinstance(cached, dict):
        return cached
    url = f"{settings.TELEGRAM_API_BASE_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/getWebhookInfo"
    response = _http().post(url)
    response.raise_for_status()
    info = response.json()["result"]
    data = {
        "url": info.get("url", ""),
        "pending_update_count": info.get("pending_update_count", 0),
        "last_error_date": info.get("last_error_date"),
    }
    cache.set("health:webhook-info", data, timeout=settings.WEBHOOK_INFO_CACHE_S)
    return data


def check_telegram() -> CheckResult:
    if settings.TELEGRAM_SANDBOX:
        return {"status": INFO, "mode": "sandbox"}
    info = _webhook_info()
    expected = f"{settings.PUBLIC_BASE_URL}/telegram/webhook/"
    error_at = info["last_error_date"]
    recent_error = bool(error_at) and time.time() - float(error_at) < settings.WEBHOOK_ERROR_WINDOW_S
    result: CheckResult = {
        "status": WARN if recent_error else OK,
        "mode": "webhook",
        "url_matches": info["url"] == expected,
        "pending_update_count": info["pending_update_count"],
    }
    if recent_error:
        result["detail"] = "webhook error in the last 10 minutes"
    return result


CHECKS: dict[str, Callable[[], CheckResult]] = {
    "database": check_database,
    "broker": check_broker,
    "workers": check_workers,
    "beat": check_beat,
    "queues": check_queues,
    "storage": check_storage,
    "telegram": check_telegram,
}
# Провал этих проверок — `down`; остальных — `degraded`
CRITICAL = ("database", "broker", "workers")
# Не узнали у Telegram getWebhookInfo (сеть, таймаут, отозванный токен) — поле отчёта, а не уровень:
# §7 понижает уровень только за ошибку доставки вебхука, о которой Telegram сообщил сам
FIELD_ONLY_FAILURES = ("telegram",)


def _timed(fn: Callable[[], CheckResult]) -> CheckResult:
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:
        result = _error(exc)
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _run_checks() -> dict[str, CheckResult]:
    futures: dict[str, Future[CheckResult]] = {}
    for name, fn in CHECKS.items():
        previous = _pending.get(name)
        # Зависшую проверку не дублируем: ждём ту же, иначе потоки копятся
        futures[name] = previous if previous and not previous.done() else _executor.submit(_timed, fn)
        _pending[name] = futures[name]
    wait(futures.values(), timeout=CHECK_BUDGET_S)
    results: dict[str, CheckResult] = {}
    for name, future in futures.items():
        if future.done():
            results[name] = future.result()
        else:
            results[name] = {"status": TIMEOUT, "detail": f"no answer within {CHECK_BUDGET_S}s"}
    return results


def _overall(checks: dict[str, CheckResult]) -> str:
    if any(checks[name]["status"] in (FAIL, TIMEOUT) for name in CRITICAL):
        return DOWN
    for name, check in checks.items():
        failed = check["status"] in (FAIL, TIMEOUT) and name not in FIELD_ONLY_FAILURES
        if failed or check["status"] == WARN:
            return DEGRADED
    return OK


def health_cached() -> dict[str, Any] | None:
    """Свежий отчёт из кэша процесса или None — без потоков и ожиданий."""
    if _cached and time.monotonic() - _cached[0] < settings.HEALTH_CACHE_S:
        return _cached[1]
    return None


def health_report(*, use_cache: bool = True) -> dict[str, Any]:
    """Сводный отчёт; при use_cache отдаёт результат не старше HEALTH_CACHE_S.

    Пока один поток пересчитывает отчёт (при зависшей зависимости это весь бюджет),
    остальные получают предыдущий отчёт, а не встают в очередь за замком.
    """
    global _cached
    if use_cache:
        fresh = health_cached()
        if fresh is not None:
            return fresh
        stale = _cached
        # Первый отчёт процесса ждём; дальше, пока идёт пересчёт, отдаём предыдущий
        if not _compute_lock.acquire(blocking=stale is None):
            assert stale is not None
            return stale[1]
    else:
        _compute_lock.acquire()
    try:
        if use_cache and (fresh := health_cached()) is not None:
            return fresh
        checks = _run_checks()
        report = {
            "status": _overall(checks),
            "checks": checks,
            "embedded_defaults": sorted(settings.EMBEDDED_DEFAULTS),
            "commit": settings.RELEASE or None,
            "time": time.time(),
        }
        _cached = (time.monotonic(), report)
        return report
    finally:
        _compute_lock.release()


def health_cache_reset() -> None:
    global _cached
    _cached = None
