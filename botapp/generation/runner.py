"""Стадия генерации (задача generation.run_job): провайдер → хранилище → «сгенерировано».

Единственный слой повторов — здесь: временная ошибка возвращает задание в очередь с
экспоненциальной паузой и джиттером, пока не кончились попытки или срок. Готовые выходы
не генерируются заново после падения воркера: они уже записаны в JobOutput.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from botapp.generation import jobs
from botapp.models import GenerationJob, GenerationModel, JobOutput
from botapp.providers.base import (
    GenerationProvider,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ReferenceImage,
)
from botapp.telegram.dbcall import connection_checked_after

logger = logging.getLogger(__name__)

# Категория отказа хранилища при сохранении результата (текст пользователю — failure_text)
STORAGE_FAILED = "storage_error"
# Доля мягкого лимита задачи Celery на вызовы провайдера; остаток — хранилище и запись в БД
TASK_BUDGET_SHARE = 0.9


@dataclass(frozen=True)
class RunResult:
    outcome: str  # busy / taken / requeued / generated / failed / polling
    countdown: float = 0


def _provider() -> GenerationProvider:
    from botapp.providers.registry import generation_provider

    return generation_provider()


def output_key(job: GenerationJob, index: int, ext: str) -> str:
    """Детерминированный ключ: повтор после падения перезаписывает тот же объект."""
    return f"jobs/{job.pk}/{index}.{ext}"


def backoff_s(attempt: int, retry_after: float | None) -> float:
    """2, 4, 8… с джиттером; подсказку провайдера (Retry-After) не укорачиваем."""
    base = float(settings.GENERATION_RETRY_BASE_S) * (2 ** max(0, attempt - 1))
    delay: float = base * random.uniform(0.5, 1.5)
    return max(delay, float(retry_after or 0.0))


def _remaining_s(job: GenerationJob) -> float:
    return (job.deadline - timezone.now()).total_seconds()


def _references(job: GenerationJob) -> list[ReferenceImage]:
    from botapp.generation import media

    return [media.reference_load(file_id=file_id) for file_id in job.reference_file_ids]


def provider_429_record() -> None:
    """Счётчик 429 от провайдера за 5 минут в Redis; выше порога — оповещение (с общим кулдауном)."""
    from django.core.cache import cache

    from botapp.models import GenerationSettings
    from botapp.ops.notify import alert_send

    bucket = f"provider-429:{int(timezone.now().timestamp() // 300)}"
    cache.add(bucket, 0, timeout=600)
    count = cache.incr(bucket)
    threshold = GenerationSettings.objects.get_or_create(pk=1)[0].provider_429_alert_threshold
    if threshold and count >= threshold:
        alert_send(key="provider-429", text=f"⚠️ Gemini answers 429 persistently: {count} in 5 minutes")


def _transient(
    job: GenerationJob, exc: ProviderTransientError, statuses: dict[int, str] | None = None
) -> RunResult:
    """statuses — выходы, уже полученные этим заданием: если повторы кончились, готовое доставляется."""
    if exc.category == "rate_limited":
        provider_429_record()
    delay = backoff_s(job.attempts, exc.retry_after)
    if job.attempts >= settings.GENERATION_MAX_ATTEMPTS or delay >= _remaining_s(job):
        if statuses and JobOutput.Status.OK in statuses.values():
            # Готовые выходы оплачены провайдеру и лежат в хранилище: доставить их и списать долю цены,
            # а не вернуть всё и выбросить результат
            logger.warning("job %s: giving up on the rest after %s; delivering what is ready", job.pk, exc)
            return _finish(job, statuses)
        jobs.job_fail(job=job, category=exc.category, message=str(exc))
        return RunResult("failed")
    jobs.job_requeue(job=job, countdown=delay, reason=str(exc))
    return RunResult("requeued", countdown=delay)


def job_run(*, job_id: int) -> RunResult:
    claimed = jobs.job_claim(job_id=job_id)
    if claimed == jobs.Claim.BUSY:
        return RunResult("busy", countdown=5)
    if not isinstance(claimed, GenerationJob):
        return RunResult("taken")
    job = claimed
    if job.kind == GenerationModel.Kind.VIDEO:
        return _run_video(job)
    return _run_image(job)


def _run_image(job: GenerationJob) -> RunResult:
    from botapp.generation import progress

    try:
        references = _references(job)
    except ProviderPermanentError as exc:
        jobs.job_fail(job=job, category=exc.category, message=str(exc))
        return RunResult("failed")
    except ProviderTransientError as exc:
        return _transient(job, exc)
    # Выходы пишет только запуск после захвата: при первом захвате их нет, читать незачем
    existing = {o.index: o.status for o in JobOutput.objects.filter(job=job)} if job.attempts > 1 else {}
    if not job.provider_started and not jobs.job_mark_provider_started(job=job):
        return RunResult("taken")
    # «Генерирую» — не раньше чем через 3 с после статуса; успели раньше — правки не будет
    cancel_status = progress.job_progress_soon(job=job, stage="generating")
    try:
        return _generate_outputs(job, references, existing)
    finally:
        cancel_status()


def _generate_outputs(
    job: GenerationJob, references: list[ReferenceImage], existing: dict[int, str]
) -> RunResult:
    from botapp.providers.storage import media_storage

    provider, storage = _provider(), media_storage()
    ordered = int(job.params.get("outputs", 1))
    fresh_lease = True  # аренду только что выдал захват: продлевать перед первым вызовом незачем
    started = time.monotonic()
    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT * TASK_BUDGET_SHARE
    for index in range(ordered):
        if index in existing:
            continue
        timeout = min(settings.GENERATION_CALL_TIMEOUT_S, max(1.0, _remaining_s(job)))
        if not fresh_lease and time.monotonic() - started + timeout > budget:
            # Следующий вызов мог бы пересечь мягкий лимит задачи: Celery оборвал бы его (оплаченный
            # провайдеру), задание висело бы до конца аренды, а остаток срока не хватил бы на повтор.
            # Готовое сохранено — продолжает новая задача сразу, с того же выхода
            jobs.job_requeue(job=job, countdown=0, reason=f"continues from output {index} in a new task")
            return RunResult("requeued")
        if not fresh_lease and not jobs.job_lease_renew(job=job):
            return RunResult("taken")
        fresh_lease = False
        try:
            with connection_checked_after():
                image = provider.generate_image(
                    model_id=job.model.provider_model_id,
                    prompt=job.prompt,
                    references=references,
                    aspect_ratio=str(job.params.get("aspect_ratio", "1:1")),
                    image_size=str(job.params.get("size", "1K")),
                    timeout_s=timeout,
                )
        except ProviderTransientError as exc:
            return _transient(job, exc, existing)
        except ProviderPermanentError as exc:
            # Один выход отказан — остальные продолжаем: спишем только за доставленное
            jobs.job_output_store(
                job=job, index=index, status=JobOutput.Status.FAILED, error_category=exc.category
            )
            existing[index] = JobOutput.Status.FAILED
            continue
        key = output_key(job, index, "png" if image.mime_type == "image/png" else "jpg")
        try:
            storage.put(kind="image", key=key, data=image.data, content_type=image.mime_type)
        except ProviderTransientError as exc:
            return _transient(job, exc, existing)
        except ProviderPermanentError as exc:
            # Хранилище отказало окончательно (права, бакет): падение задачи оставило бы задание
            # running до конца аренды, потом — перегенерация за новые деньги провайдеру и «слишком
            # долго». Этот выход — неудачный, дальше не генерируем; сохранённое раньше доставим
            logger.error("job %s: storage refused output %s: %s", job.pk, index, exc)
            jobs.job_output_store(
                job=job, index=index, status=JobOutput.Status.FAILED, error_category=STORAGE_FAILED
            )
            existing[index] = JobOutput.Status.FAILED
            break
        jobs.job_output_store(
            job=job,
            index=index,
            status=JobOutput.Status.OK,
            storage_key=key,
            mime_type=image.mime_type,
            width=image.width,
            height=image.height,
            size_bytes=len(image.data),
        )
        existing[index] = JobOutput.Status.OK
    return _finish(job, existing)


def _finish(job: GenerationJob, statuses: dict[int, str]) -> RunResult:
    if JobOutput.Status.OK in statuses.values():
        # Выходы, до которых не дошли (хранилище отказало раньше), не доставляются и не оплачиваются
        # «generated» — вызывающая задача доставляет сама; не наш переход — доставит тот, чей он
        return RunResult("generated" if jobs.job_mark_generated(job=job) else "taken")
    outputs = list(JobOutput.objects.filter(job=job))
    category = next((o.error_category for o in outputs if o.error_category), "no_image")
    jobs.job_fail(job=job, category=category)
    return RunResult("failed")


def _run_video(job: GenerationJob) -> RunResult:
    """Отправить операцию Veo один раз; имя операции сохраняется сразу — повторной отправки не бывает."""
    if job.operation_name:
        return RunResult("polling", countdown=0)
    from botapp.generation import progress

    try:
        references = _references(job)
    except ProviderError as exc:
        if isinstance(exc, ProviderTransientError):
            return _transient(job, exc)
        jobs.job_fail(job=job, category=exc.category, message=str(exc))
        return RunResult("failed")
    if not jobs.job_mark_provider_started(job=job):
        return RunResult("taken")
    progress.job_progress_soon(job=job, stage="generating")
    try:
        # Имя операции — единственная защита от второй (платной) отправки: записать его обязательно
        with connection_checked_after():
            name = _provider().submit_video(
                model_id=job.model.provider_model_id,
                prompt=job.prompt,
                image=references[0] if references else None,
                duration_s=int(job.params["duration"]),
                resolution=str(job.params["resolution"]),
                aspect_ratio=str(job.params["aspect_ratio"]),
                negative_prompt=str(job.params.get("negative_prompt", "")),
                timeout_s=min(settings.GENERATION_CALL_TIMEOUT_S, max(1.0, _remaining_s(job))),
            )
    except ProviderTransientError as exc:
        return _transient(job, exc)
    except ProviderPermanentError as exc:
        jobs.job_fail(job=job, category=exc.category, message=str(exc))
        return RunResult("failed")
    # Первый опрос — ближе к ожидаемой готовности (средняя длительность модели), а не через интервал:
    # тысяча операций по минуте не должна давать сотни пустых опросов в секунду
    from botapp.generation.progress import model_eta_s

    expected = model_eta_s(model_id=job.model_id, default=0.0)
    interval = max(settings.VIDEO_POLL_INTERVAL_S, min(0.8 * expected, 120.0))
    GenerationJob.objects.filter(pk=job.pk).update(
        operation_name=name,
        next_poll_at=timezone.now() + timedelta(seconds=interval),
        # Опрос сам продлевает аренду; сборщик смотрит на next_poll_at, а не на аренду
        lease_until=job.deadline,
    )
    return RunResult("polling", countdown=interval)


def job_poll(*, job_id: int) -> RunResult:
    """Опрос операции Veo: не готово — следующий опрос через интервал; готово — сохранить и доставить."""
    from botapp.providers.storage import media_storage

    now = timezone.now()
    job = jobs.job_load(job_id=job_id)
    if job is None or job.status != "running" or not job.operation_name:
        return RunResult("taken")
    if job.next_poll_at and job.next_poll_at > now + timedelta(seconds=1):
        # Дубликат из сборщика раньше срока: следующий опрос уже запланирован
        return RunResult("taken")
    if _remaining_s(job) <= 0:
        # Дубликат опроса мог уже сохранить ролик (GENERATED): его доставят, не просрочиваем
        expired = jobs.job_fail(
            job=job, category="deadline", status="expired", from_statuses=jobs.NOT_GENERATED
        )
        return RunResult("failed" if expired else "taken")
    interval = settings.VIDEO_POLL_INTERVAL_S
    try:
        with connection_checked_after():
            result = _provider().poll_video(operation_name=job.operation_name, timeout_s=60)
    except ProviderTransientError as exc:
        if exc.category == "rate_limited":
            provider_429_record()  # 429 при опросе — та же квота провайдера
        result = None
    except ProviderPermanentError as exc:
        jobs.job_fail(job=job, category=exc.category, message=str(exc))
        return RunResult("failed")
    if result is None or not result.done or result.data is None:
        GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=now + timedelta(seconds=interval))
        return RunResult("polling", countdown=interval)
    from botapp.generation import progress

    # Вторая стадия видео: ролик готов, дальше хранилище и sendVideo (правка — по общему правилу 3 с)
    progress.job_progress(job=job, stage="sending")
    key = output_key(job, 0, "mp4")
    try:
        media_storage().put(kind="video", key=key, data=result.data, content_type=result.mime_type)
    except ProviderTransientError as exc:
        # Готовая операция Veo отдаёт ролик снова: сохранить попробуем следующим опросом
        logger.warning("job %s: storage unavailable, polling again later: %s", job.pk, exc)
        GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=now + timedelta(seconds=interval))
        return RunResult("polling", countdown=interval)
    except ProviderPermanentError as exc:
        logger.error("job %s: storage refused the video: %s", job.pk, exc)
        jobs.job_fail(job=job, category=STORAGE_FAILED, message=str(exc))
        return RunResult("failed")
    jobs.job_output_store(
        job=job,
        index=0,
        status=JobOutput.Status.OK,
        storage_key=key,
        mime_type=result.mime_type,
        size_bytes=len(result.data),
    )
    return RunResult("generated" if jobs.job_mark_generated(job=job) else "taken")
