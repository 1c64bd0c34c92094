"""Метрики Prometheus для GET /metrics: определения, наблюдения и сбор.

Счётчики и гистограммы живут в Redis, а не в памяти процесса: веб — это несколько воркеров
gunicorn, а провайдер и отправки работают в дочерних процессах Celery; scrape попадает в
один из них и должен видеть сумму по всем. Наблюдение только кладёт число в буфер процесса
(без сети: горячий путь вебхука не ждёт Redis), фоновый поток раз в FLUSH_INTERVAL_S сливает
буфер одним конвейером HINCRBY/HINCRBYFLOAT в хеш `<REDIS_KEY_PREFIX>metrics:counters`.
Датчики (задания по статусам, очереди, сверка, группы ошибок) считаются в момент scrape.

Без REDIS_URL (встроенный режим для локального запуска) счётчики остаются в памяти своего
процесса — /metrics покажет только наблюдения веб-процесса; в production Redis обязателен.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

FLUSH_INTERVAL_S = 1.0
# Запросы scrape к PostgreSQL и Redis ограничены по времени: /metrics не должен висеть
DB_STATEMENT_TIMEOUT_MS = 1000
REDIS_TIMEOUT_S = 1.0
RECONCILIATION_CACHE_KEY = "metrics:reconciliation"

# Секунды: вебхук отвечает за десятки миллисекунд; Veo и картинки — секунды и минуты
WEBHOOK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROVIDER_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class Spec:
    name: str
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # непусто — гистограмма

    @property
    def is_histogram(self) -> bool:
        return bool(self.buckets)


WEBHOOK_LATENCY = Spec(
    "nanobanana_webhook_latency_seconds",
    "Время обработки апдейта вебхуком (запись + обработчики)",
    (),
    WEBHOOK_BUCKETS,
)
WEBHOOK_UPDATES = Spec("nanobanana_webhook_updates_total", "Апдейты Telegram по типу", ("type",))
WEBHOOK_FAILURES = Spec(
    "nanobanana_webhook_failures_total", "Апдейты, которые не удалось записать (5xx)", ("type",)
)
PROVIDER_LATENCY = Spec(
    "nanobanana_provider_latency_seconds",
    "Длительность вызова провайдера генерации",
    ("operation", "model"),
    PROVIDER_BUCKETS,
)
PROVIDER_ERRORS = Spec(
    "nanobanana_provider_errors_total",
    "Ошибки провайдера по категории (transient — повторяем, permanent — нет)",
    ("operation", "model", "kind", "category"),
)
TELEGRAM_SENDS = Spec("nanobanana_telegram_sends_total", "Успешные вызовы Bot API по методу", ("method",))
TELEGRAM_429 = Spec(
    "nanobanana_telegram_429_total", "Ответы 429 (RetryAfter) от Bot API по методу", ("method",)
)

SPECS = (
    WEBHOOK_LATENCY,
    WEBHOOK_UPDATES,
    WEBHOOK_FAILURES,
    PROVIDER_LATENCY,
    PROVIDER_ERRORS,
    TELEGRAM_SENDS,
    TELEGRAM_429,
)
_BY_NAME = {spec.name: spec for spec in SPECS}

# Типы апдейтов Telegram; всё прочее — "other", чтобы число рядов было ограничено
_UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
        "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
        "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query",
        "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
        "my_chat_member", "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
    }
)  # fmt: skip
_SAFE_LABEL = re.compile(r"[A-Za-z0-9._:/-]{1,64}")


def _label(value: object) -> str:
    text = str(value)
    return text if _SAFE_LABEL.fullmatch(text) else "other"


# ---------------------------------------------------------------------------------------------
# Буфер процесса и слив в Redis

_lock = threading.Lock()
_pending: dict[str, float] = {}
_local_totals: dict[str, float] = {}  # только без Redis
_flusher_pid: int | None = None
_redis_client: Any = None


def _field(name: str, labels: Iterable[tuple[str, str]]) -> str:
    return json.dumps([name, sorted(labels)], separators=(",", ":"))


def _add(field: str, amount: float) -> None:
    with _lock:
        _pending[field] = _pending.get(field, 0.0) + amount
    if _flusher_pid != os.getpid():
        _flusher_start()


def _inc(spec: Spec, amount: float = 1.0, **labels: str) -> None:
    _add(_field(spec.name, labels.items()), amount)


def _observe(spec: Spec, seconds: float, **labels: str) -> None:
    bound = next((b for b in spec.buckets if seconds <= b), float("inf"))
    _add(_field(f"{spec.name}_bucket", [*labels.items(), ("le", repr(bound))]), 1)
    _add(_field(f"{spec.name}_sum", labels.items()), seconds)


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
    return _redis_client


def _counters_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}metrics:counters"


def metrics_flush() -> None:
    """Слить буфер процесса в Redis; при ошибке Redis числа возвращаются в буфер до следующего раза."""
    if not _lock.acquire(timeout=REDIS_TIMEOUT_S):
        return  # замок держит застывшая при выходе нить: лучше потерять хвост счётчиков, чем зависнуть
    try:
        batch = dict(_pending)
        _pending.clear()
    finally:
        _lock.release()
    if not batch:
        return
    if not settings.REDIS_URL:
        with _lock:
            for field, amount in batch.items():
                _local_totals[field] = _local_totals.get(field, 0.0) + amount
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for field, amount in batch.items():
            if amount.is_integer():
                pipe.hincrby(_counters_key(), field, int(amount))
            else:
                pipe.hincrbyfloat(_counters_key(), field, amount)
        pipe.execute()
    except Exception as exc:
        # Буфер ограничен числом рядов (метки ограничены), так что копить можно
        logger.warning("metrics flush failed: %s", type(exc).__name__)
        with _lock:
            for field, amount in batch.items():
                _pending[field] = _pending.get(field, 0.0) + amount


_stop = threading.Event()
_flusher: threading.Thread | None = None


def _flush_loop() -> None:
    while not _stop.wait(FLUSH_INTERVAL_S):
        metrics_flush()


def _flusher_start() -> None:
    global _flusher_pid, _flusher
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    _flusher = threading.Thread(target=_flush_loop, name="metrics-flush", daemon=True)
    _flusher.start()


def _after_fork_in_child() -> None:
    # Дочерний процесс (пул Celery, воркер gunicorn) начинает с пустым буфером и своим потоком
    global _lock, _flusher_pid, _redis_client, _flusher
    _lock = threading.Lock()
    _pending.clear()
    _local_totals.clear()
    _flusher_pid = None
    _flusher = None
    _redis_client = None


def _flush_at_exit() -> None:
    """При выходе: остановить нить слива, слить остаток и закрыть клиент, пока нити ещё живы.

    Иначе интерпретатор замораживает нить-демона посреди вызова Redis с замком пула, а сборщик
    мусора потом закрывает тот же пул (Redis.__del__) и ждёт этот замок вечно: процесс зависал
    после последнего теста.
    """
    global _redis_client
    _stop.set()
    if _flusher is not None and _flusher.is_alive() and _flusher_pid == os.getpid():
        _flusher.join(timeout=REDIS_TIMEOUT_S * 3)
    metrics_flush()
    client, _redis_client = _redis_client, None
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_at_exit)


# ---------------------------------------------------------------------------------------------
# Точки наблюдения (вызываются из вебхука, отправителя, провайдера, сверки)


def webhook_timed(func: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Декоратор обработчика апдейта: тип апдейта, длительность, сбой записи."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        data = args[0] if args else kwargs.get("data")
        first = next((key for key in data if key != "update_id"), "") if isinstance(data, dict) else ""
        update_type = first if first in _UPDATE_TYPES else "other"
        started = time.perf_counter()
        try:
            return await func(*args, **kwargs)
        except BaseException:
            _inc(WEBHOOK_FAILURES, type=update_type)
            raise
        finally:
            _inc(WEBHOOK_UPDATES, type=update_type)
            _observe(WEBHOOK_LATENCY, time.perf_counter() - started)

    return wrapper


def provider_timed(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Декоратор метода провайдера: длительность и ошибки по категории (модель — из model_id)."""
    from botapp.providers.base import ProviderError, ProviderTransientError

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            model = _label(kwargs.get("model_id") or "none")
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            except ProviderError as exc:
                kind = "transient" if isinstance(exc, ProviderTransientError) else "permanent"
                _inc(
                    PROVIDER_ERRORS,
                    operation=operation,
                    model=model,
                    kind=kind,
                    category=_label(exc.category),
                )
                raise
            except Exception:
                _inc(PROVIDER_ERRORS, operation=operation, model=model, kind="unexpected", category="other")
                raise
            finally:
                _observe(PROVIDER_LATENCY, time.perf_counter() - started, operation=operation, model=model)

        return wrapper

    return decorate


def telegram_send_count(*, method: str) -> None:
    _inc(TELEGRAM_SENDS, method=_label(method))


def telegram_429_count(*, method: str) -> None:
    _inc(TELEGRAM_429, method=_label(method))


def reconciliation_record(*, ok: bool, problems: int) -> None:
    """Итог последней сверки денег — в общий кэш (Redis), его читает scrape."""
    cache.set(RECONCILIATION_CACHE_KEY, {"ok": ok, "problems": problems, "at": time.time()}, timeout=None)


# ---------------------------------------------------------------------------------------------
# Сбор при scrape


def _stored_counters() -> dict[str, float]:
    if not settings.REDIS_URL:
        with _lock:
            return dict(_local_totals)
    raw = _redis().hgetall(_counters_key())
    return {key.decode(): float(value) for key, value in raw.items()}


def _counter_families(stored: dict[str, float]) -> Iterator[Metric]:
    # {(имя ряда, метки без le): {le: значение}} — гистограммы собираются по корзинам
    series: dict[str, dict[tuple[str, ...], float]] = {}
    buckets: dict[tuple[str, ...], dict[float, float]] = {}
    for field, value in stored.items():
        try:
            name, pairs = json.loads(field)
        except ValueError:
            continue
        labels = dict(pairs)
        if name.endswith("_bucket"):
            le = float(labels.pop("le"))
            base = name.removesuffix("_bucket")
            spec = _BY_NAME.get(base)
            if spec is None:
                continue
            key = (base, *(labels.get(label, "") for label in spec.labels))
            buckets.setdefault(key, {})[le] = value
        else:
            base = name.removesuffix("_sum")
            spec = _BY_NAME.get(base)
            if spec is None:
                continue
            values = tuple(labels.get(label, "") for label in spec.labels)
            series.setdefault(name, {})[values] = value
    for spec in SPECS:
        if spec.is_histogram:
            family = HistogramMetricFamily(spec.name, spec.doc, labels=list(spec.labels))
            for key, counts in sorted(buckets.items()):
                if key[0] != spec.name:
                    continue
                cumulative, points = 0.0, []
                for bound in (*spec.buckets, float("inf")):
                    cumulative += counts.get(bound, 0.0)
                    points.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
                total = series.get(f"{spec.name}_sum", {}).get(key[1:], 0.0)
                family.add_metric(list(key[1:]), points, total)
            yield family
        else:
            counter = CounterMetricFamily(spec.name, spec.doc, labels=list(spec.labels))
            for values, value in sorted(series.get(spec.name, {}).items()):
                counter.add_metric(list(values), value)
            yield counter


def _jobs_by_state() -> dict[tuple[str, str], int]:
    from botapp.models import GenerationJob, GenerationModel, JobStatus

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(DB_STATEMENT_TIMEOUT_MS)}")
        # Нули для всех пар статус × модель: ряд не пропадает, когда заданий не осталось
        counts = {
            (status, slug): 0
            for slug in GenerationModel.objects.values_list("slug", flat=True)
            for status in JobStatus.values
        }
        rows = GenerationJob.objects.values_list("status", "model__slug").annotate(n=Count("id")).order_by()
        for status, slug, n in rows:
            counts[(status, slug)] = n
    return counts


def _error_groups_by_status() -> dict[str, int]:
    from botapp.models import ErrorGroup

    counts = dict.fromkeys(ErrorGroup.Status.values, 0)
    for status, n in ErrorGroup.objects.values_list("status").annotate(n=Count("id")).order_by():
        counts[status] = n
    return counts


def _gauge_families(up: GaugeMetricFamily) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "nanobanana_generation_jobs", "Задания генерации по статусу и модели", labels=["state", "model"]
    )
    errors = GaugeMetricFamily("nanobanana_error_groups", "Группы ошибок по статусу", labels=["status"])
    try:
        for (status, slug), n in sorted(_jobs_by_state().items()):
            jobs.add_metric([status, slug], n)
        for status, n in sorted(_error_groups_by_status().items()):
            errors.add_metric([status], n)
        up.add_metric(["postgres"], 1)
    except Exception as exc:
        logger.warning("metrics: database part failed: %s", type(exc).__name__)
        up.add_metric(["postgres"], 0)
    yield jobs
    yield errors

    from botapp.ops import health

    depth = GaugeMetricFamily("nanobanana_queue_depth", "Сообщений в очереди Celery", labels=["queue"])
    age = GaugeMetricFamily(
        "nanobanana_queue_oldest_age_seconds", "Возраст самого старого сообщения", labels=["queue"]
    )
    try:
        for queue, stats in sorted(health.check_queues()["queues"].items()):
            depth.add_metric([queue], stats["depth"])
            if stats["oldest_age_s"] is not None:
                age.add_metric([queue], stats["oldest_age_s"])
        up.add_metric(["queues"], 1)
    except Exception as exc:
        logger.warning("metrics: queue part failed: %s", type(exc).__name__)
        up.add_metric(["queues"], 0)
    yield depth
    yield age

    last = cache.get(RECONCILIATION_CACHE_KEY)
    ok = GaugeMetricFamily("nanobanana_reconciliation_ok", "Последняя сверка денег: 1 — инварианты держатся")
    problems = GaugeMetricFamily(
        "nanobanana_reconciliation_problems", "Нарушенных проверок в последней сверке"
    )
    at = GaugeMetricFamily(
        "nanobanana_reconciliation_last_run_timestamp_seconds", "Время последней сверки (Unix)"
    )
    if isinstance(last, dict):
        ok.add_metric([], 1 if last["ok"] else 0)
        problems.add_metric([], last["problems"])
        at.add_metric([], last["at"])
    yield ok
    yield problems
    yield at


class ProjectCollector(Collector):
    """Collector для prometheus_client: всё читается заново при каждом scrape."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "nanobanana_metrics_source_up", "Источник метрик ответил при этом scrape", labels=["source"]
        )
        try:
            stored = _stored_counters()
            up.add_metric(["redis"], 1)
        except Exception as exc:
            logger.warning("metrics: counters unavailable: %s", type(exc).__name__)
            stored = {}
            up.add_metric(["redis"], 0)
        yield from _counter_families(stored)
        yield from _gauge_families(up)
        yield up


def metrics_render() -> bytes:
    """Текст в формате экспозиции Prometheus (text/plain; version=0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProjectCollector())
    return generate_latest(registry)


def metrics_reset() -> None:
    """Для тестов: стереть счётчики под текущим префиксом и буфер процесса."""
    with _lock:
        _pending.clear()
        _local_totals.clear()
    if settings.REDIS_URL:
        _redis().delete(_counters_key())
