"""Статус задания для пользователя: одно сообщение, правится на месте не чаще раза в ~3 с."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError
from telegram.ext import ExtBot

from botapp.models import GenerationJob, JobStatus
from botapp.telegram.sender import RecipientBlocked, SendDeferred

logger = logging.getLogger(__name__)

EDIT_EVERY_S = 3
STAGE_SHOWN_S = 3600  # дольше любого задания: отметка показанной стадии живёт, пока статус на экране
START_GRACE_S = 1.0  # «генерирую» — только если результата нет и через секунду после старта
RECENT_JOBS = 20


# Средняя длительность по модели в процессе: (момент замера, среднее или None без истории)
_eta_cache: dict[int, tuple[float, float | None]] = {}
ETA_CACHE_S = 30.0  # оценка для статуса, а не учёт: полминуты устаревания не видно


def model_eta_s(*, model_id: int, default: float = 20.0) -> float:
    """Средняя длительность последних заданий модели (от старта до результата); default — без истории.

    Запрос — не чаще раза в ETA_CACHE_S на процесс: вебхук зовёт это для каждого задания.
    """
    cached = _eta_cache.get(model_id)
    if cached is not None and time.monotonic() - cached[0] < ETA_CACHE_S:
        return default if cached[1] is None else cached[1]
    rows = (
        GenerationJob.objects.filter(
            model_id=model_id, status=JobStatus.DELIVERED, generated_at__isnull=False
        )
        .order_by("-pk")
        .values_list("started_at", "generated_at")[:RECENT_JOBS]
    )
    durations = [(done - started).total_seconds() for started, done in rows if started and done]
    average = sum(durations) / len(durations) if durations else None
    _eta_cache[model_id] = (time.monotonic(), average)
    return default if average is None else average


def cancel_keyboard(job_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(_("✖️ Cancel"), callback_data=f"job:x:{job_id}")]])


def queued_text(*, position: int, eta_s: float) -> str:
    return _("⏳ In the queue: position {position}, about {eta} s.").format(
        position=position, eta=max(5, round(eta_s))
    )


def stage_text(stage: str, kind: str) -> str:
    texts = {
        # 🎨 у ролика путал бы: ждёшь видео, а статус — про картинку
        "generating": (
            _("🎬 Generating… The result will arrive in this chat.")
            if kind == "video"
            else _("🎨 Generating… The result will arrive in this chat.")
        ),
        # Видео готово у провайдера, идёт загрузка и отправка (до 50 МБ — это секунды)
        "sending": _("📤 The video is ready — sending it…"),
    }
    return texts[stage]


def job_progress(*, job: GenerationJob, stage: str, ids_fresh: bool = False) -> None:
    """Править сообщение статуса; лишние правки (чаще раза в 3 с) пропускаются.

    В конце статус удаляется: результат или сообщение о неудаче говорят сами за себя, а удаление
    не упирается в лимит сообщений чата, как правка. ids_fresh — id статуса в job только что
    прочитаны из базы (урегулирование вернуло их тем же оператором).
    """
    if not ids_fresh:
        ids = GenerationJob.objects.filter(pk=job.pk).values_list("status_chat_id", "status_message_id")
        if stage != "done":
            # Отложенная правка могла опоздать: видео уже доставлено, статус удалён — править нечего
            # (Telegram ответил бы 400 «message to edit not found»)
            ids = ids.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
        # Статус мог появиться уже после того, как воркер прочитал задание: берём свежие id
        fresh = ids.first()
        if fresh is None:
            return
        job.status_chat_id, job.status_message_id = fresh
    if not (job.status_chat_id and job.status_message_id):
        return
    shown_key = f"job-stage-shown:{job.pk}"
    if stage != "done" and cache.get(shown_key) == stage:
        # Стадия уже на экране: повтор задания (сборщик вернул его после сбоя) правил бы тем же
        # текстом, и Telegram ответил бы 400 «message is not modified»
        return
    if stage != "done" and not cache.add(f"job-progress:{job.pk}", 1, timeout=EDIT_EVERY_S):
        return
    from botapp.telegram.outbound import bot_call

    with translation.override(job.user.effective_language):
        text = stage_text(stage, job.kind) if stage != "done" else ""
    chat_id, message_id = job.status_chat_id, job.status_message_id

    async def edit(bot: ExtBot[Any]) -> None:
        if stage == "done":
            await bot.delete_message(chat_id, message_id)
            return
        await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        if stage in ("generating", "sending"):
            action = "upload_video" if job.kind == "video" else "upload_photo"
            await bot.send_chat_action(chat_id, action)

    try:
        bot_call(edit)
    except (TelegramError, SendDeferred, RecipientBlocked) as exc:
        # Статус — украшение: пропущенная правка (лимит чата, удалённое сообщение) не ломает задание
        logger.info("job %s status %s skipped: %s", job.pk, stage, exc)
        return
    if stage != "done":
        cache.set(shown_key, stage, timeout=STAGE_SHOWN_S)


# Обновление места в очереди (maintenance.queue_status, расписание — в tasks/schedule.py)
QUEUE_REFRESH_AFTER_S = 10  # статус моложе этого ещё показывает верное место
QUEUE_REFRESH_BATCH = 20  # правок за проход: лимит Telegram нужнее доставке результатов


def queue_refresh() -> int:
    """Поправить место и ETA в статусах заданий, которые ждут в очереди; число правок.

    Правятся самые давние ожидающие, только если место изменилось с прошлой правки, и не больше
    QUEUE_REFRESH_BATCH за проход. Своя отметка, а не общая с правками стадий: иначе правка очереди
    за миг до захвата подавила бы «генерирую» (та отложена на секунду после старта и придёт позже).
    """
    queued = list(
        GenerationJob.objects.filter(status=JobStatus.QUEUED)
        .order_by("pk")
        .values_list("pk", "kind", "created_at", "status_message_id")
    )
    counters: dict[str, int] = {}
    positions: dict[int, int] = {}
    cutoff = timezone.now() - timedelta(seconds=QUEUE_REFRESH_AFTER_S)
    for pk, kind, created_at, message_id in queued:
        counters[kind] = counters.get(kind, 0) + 1
        if message_id and created_at <= cutoff:
            positions[pk] = counters[kind]
    shown = cache.get_many([f"job-queue-shown:{pk}" for pk in positions])
    due = [pk for pk, position in positions.items() if shown.get(f"job-queue-shown:{pk}") != position]
    edited = 0
    # Заблокировавшим бота не пишем: Telegram ответит 403 (а доставку за них урегулирует сама доставка)
    waiting = GenerationJob.objects.filter(pk__in=due[:QUEUE_REFRESH_BATCH], user__is_blocked=False)
    for job in waiting.select_related("user"):
        position = positions[job.pk]
        with translation.override(job.user.effective_language):
            text = queued_text(position=position, eta_s=job_eta(job=job, position=position))
            markup = cancel_keyboard(job.pk)
        try:
            _edit_status(job, text, markup)
        except (TelegramError, SendDeferred, RecipientBlocked) as exc:
            # Как и у стадий: статус — украшение, пропуск не ломает задание
            logger.info("job %s queue status skipped: %s", job.pk, exc)
            continue
        cache.set(f"job-queue-shown:{job.pk}", position, timeout=3600)
        # На экране снова очередь: следующая стадия — уже изменение
        cache.delete(f"job-stage-shown:{job.pk}")
        edited += 1
    return edited


def _edit_status(job: GenerationJob, text: str, markup: InlineKeyboardMarkup) -> None:
    from botapp.telegram.outbound import bot_call

    chat_id, message_id = job.status_chat_id, job.status_message_id

    async def edit(bot: ExtBot[Any]) -> None:
        await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, reply_markup=markup)

    bot_call(edit)


class _Deferred(threading.Thread):
    """Отложенные правки статуса процесса воркера: одна нить со своим Bot, очередь по сроку.

    Воркер занят синхронным вызовом провайдера и сам править статус в нужный момент не может.
    """

    def __init__(self) -> None:
        super().__init__(name="job-progress", daemon=True)
        self.pid = os.getpid()
        self._heap: list[tuple[float, int, GenerationJob, str, threading.Event]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()

    def add(self, due: float, job: GenerationJob, stage: str) -> threading.Event:
        cancelled = threading.Event()
        with self._wake:
            heapq.heappush(self._heap, (due, next(self._order), job, stage, cancelled))
            self._wake.notify()
        return cancelled

    def run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _due, _n, job, stage, cancelled = heapq.heappop(self._heap)
            if cancelled.is_set():
                continue
            try:
                job_progress(job=job, stage=stage)
            except Exception:
                logger.exception("job %s deferred status %s failed", job.pk, stage)
            finally:
                from django.db import close_old_connections

                # Нить не должна умереть из-за сбоя закрытия соединения: правки встанут
                with contextlib.suppress(Exception):
                    close_old_connections()


_deferred: _Deferred | None = None
_deferred_lock = threading.Lock()


def _deferred_thread() -> _Deferred:
    global _deferred
    with _deferred_lock:
        # После fork (дети prefork) нить родителя не существует: своя на процесс
        if _deferred is None or _deferred.pid != os.getpid() or not _deferred.is_alive():
            _deferred = _Deferred()
            _deferred.start()
        return _deferred


def job_progress_soon(*, job: GenerationJob, stage: str) -> Callable[[], None]:
    """Правка статуса, но не раньше EDIT_EVERY_S после его отправки; возвращает отмену.

    Быстрое задание успевает раньше: результат приходит, а лишних правки и chat action нет.
    Долгое получает «генерирую» и upload_photo ровно тогда, когда их уже можно показать, но
    не раньше START_GRACE_S после старта: иначе при очереди каждая правка опережала бы результат
    на миллисекунды и тратила лимит чата, нужный самому результату.
    """
    age = (timezone.now() - job.created_at).total_seconds() if job.created_at else EDIT_EVERY_S
    delay = max(EDIT_EVERY_S - age, START_GRACE_S)
    cancelled = _deferred_thread().add(time.monotonic() + delay, job, stage)
    return cancelled.set


def job_eta(*, job: GenerationJob, position: int) -> float:
    """Оценка до результата: задания впереди идут «волнами» по числу слотов воркера.

    Слотов — CELERY_WORKER_CONCURRENCY одного воркера: при нескольких воркерах оценка
    с запасом, а не обещание, которое не сбудется.
    """
    slots = max(1, int(settings.CELERY_WORKER_CONCURRENCY))
    waves = -(-max(1, position) // slots)  # деление с округлением вверх
    return model_eta_s(model_id=job.model_id) * waves
