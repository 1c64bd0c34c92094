"""Хранение медиа: срок MEDIA_RETENTION_DAYS и удаление по /delete_me.

Файлы удаляются из хранилища, а file_id Telegram остаются: галерея продолжает работать
через Telegram, но у нас копии больше нет. После /delete_me стираются и file_id, и промпты.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from botapp.models import GenerationJob, JobOutput, TelegramUser
from botapp.models.generation import ACTIVE_STATUSES
from botapp.providers.base import MediaKind, ProviderError

logger = logging.getLogger(__name__)

BATCH = 500
# Ключ params с негативным промптом видео (drafts.draft_params)
NEGATIVE_PROMPT = "negative_prompt"
# Задание ещё хранит что-то из текста или фото пользователя; иначе стирать в нём нечего
_personal_left = ~Q(prompt="") | ~Q(reference_file_ids=[]) | Q(params__has_key=NEGATIVE_PROMPT)


def _delete_objects(outputs: list[JobOutput]) -> set[int]:
    """Удалить файлы выходов; вернуть pk тех, у кого файла больше нет (удалён или не было).

    Картинки и видео лежат в разных корзинах и удаляются отдельно: сбой одной не держит файлы другой.
    Сбой хранилища — предупреждение, а не исключение: ключи остаются, следующий проход повторит.
    """
    from botapp.providers.storage import media_storage

    storage = media_storage()
    by_kind: dict[MediaKind, list[JobOutput]] = {"image": [], "video": []}
    gone = {output.pk for output in outputs if not output.storage_key}
    for output in outputs:
        if output.storage_key:
            by_kind["video" if output.job.kind == "video" else "image"].append(output)
    for kind, items in by_kind.items():
        if not items:
            continue
        try:
            storage.delete(kind=kind, keys=[output.storage_key for output in items])
        except ProviderError:
            logger.warning(
                "storage did not delete %s %s files, the next pass retries", len(items), kind, exc_info=True
            )
            continue
        gone.update(output.pk for output in items)
    return gone


def media_retention_sweep() -> int:
    """Удалить файлы результатов старше срока хранения; вернуть число удалённых."""
    cutoff = timezone.now() - timedelta(days=settings.MEDIA_RETENTION_DAYS)
    outputs = list(
        JobOutput.objects.select_related("job")
        .filter(created_at__lt=cutoff)
        .exclude(storage_key="")
        .exclude(job__status__in=ACTIVE_STATUSES)[:BATCH]
    )
    gone = _delete_objects(outputs)
    JobOutput.objects.filter(pk__in=gone).update(storage_key="")
    return len(gone)


def user_media_erase(*, user: TelegramUser) -> int:
    """/delete_me: файлы пользователя, его промпты и ссылки на фото.

    Задания в очереди отменяются (холд возвращается); уже начатые у провайдера доделываются
    и доставляются, а их файлы и промпт стирает erased_users_sweep, когда они завершатся.
    """
    from botapp.generation import jobs

    for job_id in GenerationJob.objects.filter(user=user, status__in=ACTIVE_STATUSES).values_list(
        "pk", flat=True
    ):
        jobs.job_cancel(job_id=job_id, user=user)
    TelegramUser.objects.filter(pk=user.pk).update(data_erased_at=timezone.now())
    return _erase(
        JobOutput.objects.filter(job__user=user), GenerationJob.objects.filter(user=user), limit=None
    )


def erased_users_sweep() -> int:
    """Задания, которые дорабатывали после /delete_me: стереть их файлы и промпты, когда завершились."""
    before_erase = Q(job__created_at__lte=F("job__user__data_erased_at"))
    leftovers = Q(storage_key__gt="") | Q(photo_file_id__gt="") | Q(video_file_id__gt="")
    outputs = JobOutput.objects.filter(before_erase, leftovers, job__user__data_erased_at__isnull=False)
    erased = _erase(
        outputs,
        GenerationJob.objects.filter(
            user__data_erased_at__isnull=False, created_at__lte=F("user__data_erased_at")
        ).filter(_personal_left),
        limit=BATCH,
    )
    if erased:
        logger.info("erased %s outputs of jobs finished after /delete_me", erased)
    return erased


def _erase(outputs: QuerySet[JobOutput], job_rows: QuerySet[GenerationJob], *, limit: int | None) -> int:
    """Стереть файлы и ссылки выходов, промпты и негативные промпты заданий; задания в работе не трогаем."""
    finished = list(outputs.select_related("job").exclude(job__status__in=ACTIVE_STATUSES)[:limit])
    cleared: dict[str, Any] = {
        "photo_file_id": "",
        "document_file_id": "",
        "video_file_id": "",
        "message_id": None,
    }
    # Сбой хранилища не должен оставить переписку и промпты: их стираем сейчас, а ключи
    # неудалённых файлов оставляем — по ним erased_users_sweep удалит файлы, когда хранилище оживёт
    gone = _delete_objects(finished)
    with transaction.atomic():
        JobOutput.objects.filter(pk__in=[o.pk for o in finished]).update(**cleared)
        JobOutput.objects.filter(pk__in=gone).update(storage_key="")
        finished_jobs = job_rows.exclude(status__in=ACTIVE_STATUSES)
        # Негативный промпт видео — тоже текст пользователя, но лежит в params среди настроек;
        # убираем только этот ключ (в Python: одинаково для PostgreSQL и SQLite)
        for pk, params in finished_jobs.filter(params__has_key=NEGATIVE_PROMPT).values_list("pk", "params"):
            params.pop(NEGATIVE_PROMPT, None)
            GenerationJob.objects.filter(pk=pk).update(params=params)
        finished_jobs.update(prompt="", reference_file_ids=[])
    return len(gone)
