"""Жизненный цикл задания: создание с холдом, захват с арендой, результат, доставка, отказ, отмена.

Инварианты (ARCHITECTURE §4): задание, холд и постановка в очередь — одна транзакция (очередь —
по коммиту); воркер захватывает задание условным UPDATE с арендой, второй не получает ничего;
холд урегулируется ровно один раз: списание за доставленное, иначе возврат целиком.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from kombu.exceptions import OperationalError

from botapp.billing import ledger
from botapp.billing.errors import PricingError
from botapp.billing.pricing import (
    Factors,
    ImageRequest,
    VideoRequest,
    factors_of,
    price_tokens,
    pricing_factors,
    provider_cost_usd,
)
from botapp.models import (
    Account,
    GenerationJob,
    GenerationModel,
    GenerationSettings,
    Hold,
    JobOutput,
    JobStatus,
    PricingSettings,
    TelegramUser,
    rows,
)
from botapp.models.generation import ACTIVE_STATUSES

logger = logging.getLogger(__name__)


class JobRefused(Exception):
    """Запрос нельзя принять; code — для текста пользователю (model_disabled, prompt_too_long, …)."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


def job_request(
    model: GenerationModel, params: dict[str, Any], references: int
) -> ImageRequest | VideoRequest:
    """Параметры задания → запрос для цены (та же функция считает показанную цену и списание)."""
    if model.kind == GenerationModel.Kind.IMAGE:
        return ImageRequest(
            size=str(params.get("size", "1K")),
            outputs=int(params.get("outputs", 1)),
            reference_images=references,
            aspect_ratio=params.get("aspect_ratio"),
        )
    return VideoRequest(
        duration=int(params["duration"]),
        resolution=str(params["resolution"]),
        aspect_ratio=str(params["aspect_ratio"]),
        reference_images=references,
    )


def job_price(*, model: GenerationModel, params: dict[str, Any], references: int) -> int:
    """Цена в токенах по действующему каталогу (карточка, создание задания)."""
    return price_tokens(model, job_request(model, params, references), pricing_factors())


def _today_start() -> Any:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


@functools.cache
def _settings_sql() -> str:
    return (
        f"SELECT {rows.columns(PricingSettings, 'p')}, {rows.columns(GenerationSettings, 'g')} "  # noqa: S608
        f"FROM (SELECT 1) AS one LEFT JOIN {rows.table(PricingSettings)} p ON p.id = 1 "
        f"LEFT JOIN {rows.table(GenerationSettings)} g ON g.id = 1"
    )


def _settings() -> tuple[Factors, GenerationSettings]:
    """Цены и защита расходов — одним запросом: их читает каждое новое задание."""
    with connection.cursor() as cursor:
        cursor.execute(_settings_sql())
        row = cursor.fetchone()
    split = rows.width(PricingSettings)
    if row is None or row[0] is None or row[split] is None:
        # Строк ещё нет (свежая база): создать как обычно
        return pricing_factors(), GenerationSettings.objects.get_or_create(pk=1)[0]
    prices = rows.from_row(PricingSettings, row[:split])
    return factors_of(prices), rows.from_row(GenerationSettings, row[split:])


def spend_check(*, model: GenerationModel, cost_usd: Decimal, guard: GenerationSettings) -> None:
    """Защита расходов: общий выключатель, выключатель модели, суточный потолок себестоимости.

    guard — настройки генерации (_settings). Raises: JobRefused(paused | model_disabled | daily_cap)
    с текстом для пользователя.
    """
    if not guard.generation_enabled:
        raise JobRefused("paused", text_ru=guard.paused_text_ru, text_en=guard.paused_text_en)
    if not model.is_enabled:
        raise JobRefused("model_disabled", text_ru=model.disabled_text_ru, text_en=model.disabled_text_en)
    if guard.daily_cost_cap_usd > 0:
        spent = GenerationJob.objects.filter(created_at__gte=_today_start()).exclude(
            status__in=(JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)
        ).aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
        if spent + cost_usd > guard.daily_cost_cap_usd:
            logger.warning(
                "daily provider cost cap reached: %s + %s > %s", spent, cost_usd, guard.daily_cost_cap_usd
            )
            raise JobRefused("daily_cap", text_ru=guard.paused_text_ru, text_en=guard.paused_text_en)


def prompt_too_long(model: GenerationModel, prompt: str) -> bool:
    """Правило длины запроса — одно для отказа при запуске и предупреждения на карточке."""
    return len(prompt) > model.max_prompt_length


def job_validate(*, model: GenerationModel, prompt: str, params: dict[str, Any], references: int) -> int:
    """Проверить запрос по каталогу и защите расходов и вернуть цену. Raises JobRefused."""
    return _validated(model=model, prompt=prompt, params=params, references=references)[0]


def _validated(
    *, model: GenerationModel, prompt: str, params: dict[str, Any], references: int
) -> tuple[int, Decimal]:
    """job_validate и себестоимость: создание задания пишет обе."""
    if model.kind == GenerationModel.Kind.IMAGE and not prompt.strip():
        raise JobRefused("prompt_empty")
    if prompt_too_long(model, prompt):
        raise JobRefused("prompt_too_long", limit=model.max_prompt_length, length=len(prompt))
    if references > model.max_reference_images:
        raise JobRefused("too_many_references", limit=model.max_reference_images)
    factors, guard = _settings()
    try:
        request = job_request(model, params, references)
        cost = provider_cost_usd(model, request)
        price = price_tokens(model, request, factors)
    except (PricingError, KeyError, ValueError) as exc:
        raise JobRefused("bad_parameters") from exc
    spend_check(model=model, cost_usd=cost, guard=guard)
    return price, cost


def job_publish(job_id: int, *, countdown: float = 0, stamped: bool = False) -> None:
    """Отправить задание в брокер и запомнить момент (сборщик переопубликует потерянное).

    Отметка — ожидаемый старт (сейчас + countdown), а не момент отправки: иначе пауза длиннее
    GENERATION_QUEUE_REPUBLISH_S (Retry-After провайдера) выглядела бы потерей, сборщик публиковал бы
    копию раньше срока, и та тратила бы попытку на новый 429.
    stamped — момент уже записан (новое задание получает его при вставке): без лишнего UPDATE.
    """
    from botapp.tasks import generation as tasks

    if not stamped:
        GenerationJob.objects.filter(pk=job_id).update(
            published_at=timezone.now() + timedelta(seconds=countdown)
        )
    try:
        tasks.run_job.apply_async((job_id,), countdown=countdown)
    except OperationalError:
        # Брокер недоступен: задание и холд уже в базе; пустой published_at — сборщик опубликует первым делом
        logger.exception("job %s not published: broker unavailable", job_id)
        GenerationJob.objects.filter(pk=job_id).update(published_at=None)


def job_create(
    *,
    user: TelegramUser,
    model: GenerationModel,
    prompt: str,
    params: dict[str, Any],
    reference_file_ids: list[str],
    idempotency_key: str,
    source_job: GenerationJob | None = None,
    status_chat_id: int | None = None,
    price_limit: int | None = None,
) -> tuple[GenerationJob, bool]:
    """Создать задание, заблокировать цену и поставить в очередь по коммиту; (задание, создано ли).

    Повтор ключа (та же кнопка дважды) возвращает то же задание. price_limit — цена, которую видел
    пользователь: каталог или наценку могли поднять, пока карточка ждала, а списать больше показанного
    нельзя (JobRefused «price_changed»; дешевле — можно).
    Raises: JobRefused; InsufficientFunds — токенов не хватает, ничего не создано.
    """
    existing = _job_by_key(idempotency_key)
    if existing is not None:
        return existing, False
    price, cost = _validated(model=model, prompt=prompt, params=params, references=len(reference_file_ids))
    if price_limit is not None and price > price_limit:
        raise JobRefused("price_changed", price=price, shown=price_limit)
    deadline_s = (
        settings.GENERATION_IMAGE_DEADLINE_S
        if model.kind == GenerationModel.Kind.IMAGE
        else settings.GENERATION_VIDEO_DEADLINE_S
    )
    try:
        with transaction.atomic():
            # Сырой INSERT: создание — на каждое задание из вебхука (rows.py: почему)
            job = rows.insert(
                GenerationJob(
                    user=user,
                    model=model,
                    kind=model.kind,
                    idempotency_key=idempotency_key,
                    prompt=prompt,
                    params=params,
                    reference_file_ids=reference_file_ids,
                    source_job=source_job,
                    price=price,
                    cost_usd=cost,
                    deadline=timezone.now() + timedelta(seconds=deadline_s),
                    status_chat_id=status_chat_id,
                    # Публикация — сразу после коммита; не удастся — job_publish сбросит отметку
                    published_at=timezone.now(),
                )
            )
            job.hold = ledger.hold(
                user=user, amount=price, key=f"job:{job.pk}", reference=job, savepoint=False
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {rows.table(GenerationJob)} SET hold_id = %s WHERE id = %s",  # noqa: S608
                    [job.hold.pk, job.pk],
                )
            transaction.on_commit(lambda: job_publish(job.pk, stamped=True))
    except IntegrityError:
        # Та же кнопка в параллельном апдейте: задание уже создано им
        return GenerationJob.objects.get(idempotency_key=idempotency_key), False
    return job, True


def _job_by_key(key: str) -> GenerationJob | None:
    """Задание по ключу идемпотентности (повтор кнопки); сырой SQL — проверка идёт на каждое создание."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(GenerationJob, 'j')} FROM {rows.table(GenerationJob)} j "  # noqa: S608
            "WHERE j.idempotency_key = %s",
            [key],
        )
        row = cursor.fetchone()
    return rows.from_row(GenerationJob, row) if row is not None else None


class Claim:
    BUSY = "busy"  # у пользователя уже выполняется максимум заданий
    TAKEN = "taken"  # задание у другого воркера или уже завершено


def job_claim(*, job_id: int) -> GenerationJob | str:
    """Захватить задание с арендой; второй претендент получает Claim.TAKEN.

    Захват возможен из очереди или у воркера, чья аренда истекла (он умер).
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        outcome = _claim_postgres(job_id, now)
        # Захват возвращает строку задания с моделью и пользователем: job_load не нужен
        return outcome if isinstance(outcome, str) else _job_from_row(outcome)
    portable = _claim_portable(job_id, now)
    if portable is not True:
        return str(portable)
    job = job_load(job_id=job_id)
    assert job is not None  # захваченное задание не удаляется
    return job


@functools.cache
def _load_sql(balance: bool) -> str:
    # Имена таблиц и столбцов — из моделей, значение — параметром
    available = (
        f", (SELECT a.available FROM {rows.table(Account)} a WHERE a.user_id = j.user_id)"  # noqa: S608
        if balance
        else ""
    )
    return (
        f"SELECT {rows.columns(GenerationJob, 'j')}, {rows.columns(GenerationModel, 'm')}, "  # noqa: S608
        f"{rows.columns(TelegramUser, 'u')}{available} FROM {rows.table(GenerationJob)} j "
        f"JOIN {rows.table(GenerationModel)} m ON m.id = j.model_id "
        f"JOIN {rows.table(TelegramUser)} u ON u.id = j.user_id WHERE j.id = %s"
    )


def job_load(*, job_id: int) -> GenerationJob | None:
    """Задание с моделью и пользователем — как select_related("model", "user"), но без сборки ORM.

    Его читают захват, доставка и опрос Veo на каждое задание (rows.py: почему).
    """
    with connection.cursor() as cursor:
        cursor.execute(_load_sql(False), [job_id])
        row = cursor.fetchone()
    return None if row is None else _job_from_row(row)


def job_load_with_balance(*, job_id: int) -> tuple[GenerationJob, int] | None:
    """То же и доступные токены пользователя (подпись результата) — одним запросом, а не двумя."""
    with connection.cursor() as cursor:
        cursor.execute(_load_sql(True), [job_id])
        row = cursor.fetchone()
    return None if row is None else (_job_from_row(row[:-1]), int(row[-1] or 0))


def _job_from_row(row: Any) -> GenerationJob:
    """Строка «задание, модель, пользователь» (столбцы как в _load_sql) → задание со связями."""
    job_end = rows.width(GenerationJob)
    model_end = job_end + rows.width(GenerationModel)
    job = rows.from_row(GenerationJob, row[:job_end])
    job.model = rows.from_row(GenerationModel, row[job_end:model_end])
    job.user = rows.from_row(TelegramUser, row[model_end:])
    return job


@functools.cache
def _claim_sql() -> tuple[str, str, str]:
    """Блокировка пользователя, условный UPDATE захвата и счёт занятых: текст один на процесс."""
    jobs_table, users_table = rows.table(GenerationJob), rows.table(TelegramUser)
    running = (
        f"SELECT count(*) FROM {jobs_table} r WHERE r.user_id = j.user_id "  # noqa: S608
        "AND r.status = 'running' AND r.lease_until > %s AND r.id <> j.id"
    )
    lock = (
        f"SELECT u.id FROM {jobs_table} j JOIN {users_table} u ON u.id = j.user_id "  # noqa: S608
        "WHERE j.id = %s FOR UPDATE OF u"
    )
    # Без входных фото провайдер получает запрос сразу после захвата: отмена с этой минуты
    # уже не возвращает токены (отдельный UPDATE перед вызовом не нужен)
    claim = (
        f"UPDATE {jobs_table} j SET status = 'running', lease_until = %s, "  # noqa: S608
        "attempts = j.attempts + 1, started_at = %s, "
        "provider_started = j.provider_started OR j.reference_file_ids = '[]'::jsonb "
        f"FROM {rows.table(GenerationModel)} m, {users_table} u "
        "WHERE j.id = %s AND m.id = j.model_id AND u.id = j.user_id AND j.deadline > %s "
        "AND (j.status = 'queued' OR (j.status = 'running' AND j.lease_until < %s)) "
        f"AND ({running}) < %s RETURNING {rows.columns(GenerationJob, 'j')}, "
        f"{rows.columns(GenerationModel, 'm')}, {rows.columns(TelegramUser, 'u')}"
    )
    busy = f"SELECT j.status, ({running}) FROM {jobs_table} j WHERE j.id = %s"  # noqa: S608
    return lock, claim, busy


def _claim_postgres(job_id: int, now: Any) -> Any:
    """Один круг к базе: блокировка строки пользователя и UPDATE … RETURNING со счётом в подзапросе.

    Оба оператора — в одном запросе простого протокола: PostgreSQL выполняет их одной неявной
    транзакцией (блокировка держится до конца UPDATE), а снимок у каждого оператора свой — UPDATE
    видит захваты, закоммиченные, пока мы ждали блокировку. Прежде это были BEGIN, SELECT, UPDATE,
    COMMIT — четыре круга. Захвачено — строка задания с моделью и пользователем (как у job_load),
    иначе Claim.*.
    """
    limit = settings.GENERATION_MAX_IN_FLIGHT_PER_USER
    lock_sql, claim_sql, busy_sql = _claim_sql()
    lease_until = now + timedelta(seconds=settings.GENERATION_LEASE_S)
    with connection.cursor() as cursor:
        # Блокировка строки пользователя выстраивает захваты его заданий по одному: лимит не обгонят
        cursor.execute(f"{lock_sql}; {claim_sql}", [job_id, lease_until, now, job_id, now, now, now, limit])
        cursor.nextset()
        claimed = cursor.fetchone()
        if claimed is not None:
            return claimed
        # Не захвачено: занято лимитом пользователя или задание уже не ждёт (другой воркер, завершено)
        cursor.execute(busy_sql, [now, job_id])
        busy = cursor.fetchone()
    if busy is None or busy[0] not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return Claim.TAKEN
    return Claim.BUSY if busy[1] >= limit else Claim.TAKEN


def _claim_portable(job_id: int, now: Any) -> bool | str:
    """Встроенный SQLite (make run): пишущая транзакция IMMEDIATE и так одна на всю базу."""
    with transaction.atomic():
        job = (
            GenerationJob.objects.filter(pk=job_id)
            .only("user_id", "status", "reference_file_ids", "provider_started")
            .first()
        )
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return Claim.TAKEN
        running = (
            GenerationJob.objects.filter(user_id=job.user_id, status=JobStatus.RUNNING, lease_until__gt=now)
            .exclude(pk=job_id)
            .count()
        )
        if running >= settings.GENERATION_MAX_IN_FLIGHT_PER_USER:
            return Claim.BUSY
        updated = (
            GenerationJob.objects.filter(pk=job_id, deadline__gt=now)
            .filter(Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, lease_until__lt=now))
            .update(
                status=JobStatus.RUNNING,
                lease_until=now + timedelta(seconds=settings.GENERATION_LEASE_S),
                attempts=F("attempts") + 1,
                started_at=now,
                provider_started=job.provider_started or not job.reference_file_ids,
            )
        )
    return True if updated else Claim.TAKEN


def job_mark_provider_started(*, job: GenerationJob) -> bool:
    """Провайдер вот-вот получит запрос: отмена больше не возвращает токены (результат будет).

    False — задание уже завершено (отмена успела между захватом и этим шагом): провайдера не звать.
    """
    updated = GenerationJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(
        provider_started=True
    )
    return bool(updated)


def job_lease_renew(*, job: GenerationJob) -> bool:
    """Продлить аренду перед очередным вызовом провайдера (выходов несколько — вместе дольше аренды).

    False — задание уже не наше: сборщик счёл нас умершими и его захватил другой (attempts другой),
    или оно завершено. Тогда работу бросаем, чтобы не платить провайдеру дважды.
    """
    updated = GenerationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(
        lease_until=timezone.now() + timedelta(seconds=settings.GENERATION_LEASE_S)
    )
    return bool(updated)


def job_requeue(*, job: GenerationJob, countdown: float, reason: str) -> None:
    """Временная ошибка: вернуть в очередь (аренда снята) и опубликовать с паузой."""
    updated = GenerationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.QUEUED, lease_until=None, error_message=reason[:500]
    )
    if updated:
        transaction.on_commit(lambda: job_publish(job.pk, countdown=countdown))


def job_output_store(*, job: GenerationJob, index: int, **fields: Any) -> None:
    """Запомнить результат (повторный запуск после падения не генерирует готовое заново).

    Один INSERT … ON CONFLICT по (job, index): повтор после падения перезаписывает строку.
    """
    rows.upsert(JobOutput(job=job, index=index, **fields), unique=["job", "index"], update=list(fields))


def job_mark_generated(*, job: GenerationJob) -> bool:
    """Все выходы получены (или часть — с отказами): дальше доставка.

    Доставляет задача, получившая True (тем же воркером, без круга через брокер): тем же
    оператором она берёт аренду доставки. Упавшую между этим шагом и отправкой подберёт
    сборщик, когда аренда истечёт, — задание остаётся в GENERATED.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        # Сырой SQL: переход идёт на каждое задание, сборка того же UPDATE через ORM дороже его самого
        cursor.execute(
            f"UPDATE {rows.table(GenerationJob)} SET status = %s, generated_at = %s, lease_until = %s "  # noqa: S608
            "WHERE id = %s AND status = %s",
            [
                JobStatus.GENERATED.value,
                now,
                now + timedelta(seconds=settings.DELIVERY_LEASE_S),
                job.pk,
                JobStatus.RUNNING.value,
            ],
        )
        return bool(cursor.rowcount == 1)


def job_outputs_ok(*, job_id: int) -> list[JobOutput]:
    """Готовые выходы задания по порядку (доставка читает их на каждое задание — сырым SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(JobOutput, 'o')} FROM {rows.table(JobOutput)} o "  # noqa: S608
            'WHERE o.job_id = %s AND o.status = %s ORDER BY o."index"',
            [job_id, JobOutput.Status.OK.value],
        )
        return [rows.from_row(JobOutput, row) for row in cursor.fetchall()]


def _deliverable() -> Q:
    return Q(status=JobStatus.GENERATED) | Q(
        status__in=(JobStatus.FAILED, JobStatus.EXPIRED), notified_at__isnull=True
    )


def job_delivery_claim(*, job_id: int) -> bool:
    """Взять аренду доставки (результата или сообщения о неудаче); False — доставляет другой или нечего.

    Две копии задачи доставки (повтор + сборщик) не отправят результат дважды: вторая не получит аренду.
    """
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    claimed = GenerationJob.objects.filter(_deliverable(), free, pk=job_id).update(
        lease_until=now + timedelta(seconds=settings.DELIVERY_LEASE_S)
    )
    return bool(claimed)


def job_delivery_hold(*, job_id: int, seconds: float | None = None) -> None:
    """Аренда доставки — ещё seconds с от сейчас (по умолчанию полный срок).

    Продление, пока отправка идёт (альбом, документы, большое видео), и отсрочка до повтора после
    429 или сбоя сети (seconds = задержка повтора): сборщик публикует доставку лишь после истечения
    аренды, так что запланированный повтор успевает первым.
    """
    hold_s = settings.DELIVERY_LEASE_S if seconds is None else seconds
    GenerationJob.objects.filter(_deliverable(), pk=job_id).update(
        lease_until=timezone.now() + timedelta(seconds=hold_s)
    )


def _publish_delivery(job_id: int, countdown: float = 0) -> None:
    from botapp.tasks import generation as tasks

    tasks.deliver_job.apply_async((job_id,), countdown=countdown)


# До результата: сборщик, персонал и срок опроса решают по прочитанному статусу, а задание могло
# стать GENERATED уже после чтения — тогда его доставляет держатель аренды, возвращать холд нельзя
NOT_GENERATED = (JobStatus.QUEUED, JobStatus.RUNNING)


def job_fail(
    *,
    job: GenerationJob,
    category: str,
    message: str = "",
    status: str = JobStatus.FAILED,
    from_statuses: tuple[str, ...] = ACTIVE_STATUSES,
) -> bool:
    """Задание не удалось (или просрочено, или отменено): возврат холда целиком, ровно один раз.

    from_statuses — из каких статусов переход допустим; условие проверяет сама база (UPDATE … WHERE),
    а не прочитанная раньше строка. False — задание уже не в них (завершено или ушло дальше).
    """
    with transaction.atomic():
        updated = GenerationJob.objects.filter(pk=job.pk, status__in=from_statuses).update(
            status=status,
            error_category=category[:32],
            error_message=message[:500],
            finished_at=timezone.now(),
            lease_until=None,
        )
        if not updated:
            return False
        hold = GenerationJob.objects.select_related("hold").get(pk=job.pk).hold
        if hold is not None:
            ledger.release(hold=hold, reason=f"job {job.pk}: {category}", savepoint=False)
        if status != JobStatus.CANCELLED:
            transaction.on_commit(lambda: _publish_delivery(job.pk))
    return True


def job_cancel(*, job_id: int, user: TelegramUser) -> str:
    """Отмена пользователем: только пока провайдер не начал. Код: cancelled / started / finished."""
    job = GenerationJob.objects.filter(pk=job_id, user=user).first()
    if job is None or job.is_terminal:
        return "finished"
    with transaction.atomic():
        locked = (
            GenerationJob.objects.select_for_update()
            .filter(pk=job_id, provider_started=False, status__in=ACTIVE_STATUSES)
            .first()
        )
        if locked is None:
            return "started"
        job_fail(job=locked, category="cancelled", status=JobStatus.CANCELLED)
    return "cancelled"


def job_charge(*, job: GenerationJob, delivered: int) -> int:
    """Сколько списать за delivered выходов: вся показанная цена или её доля ⌈цена × delivered / заказано⌉.

    Только из цены задания (она же сумма холда), без каталога: персонал мог с тех пор убрать размер или
    снизить max_outputs — пересчёт по живому каталогу бросал PricingError, и доставка не завершалась никогда.
    """
    ordered = max(1, int(job.params.get("outputs", 1))) if job.kind == GenerationModel.Kind.IMAGE else 1
    if delivered >= ordered:
        return job.price
    return min(-(-job.price * max(0, delivered) // ordered), job.price)


def job_settle_delivered(*, job: GenerationJob, delivered: int) -> int:
    """Доставлено delivered выходов: списать их цену (не больше показанной), остаток холда вернуть.

    Возвращает списанное. Повтор возвращает прежний итог (урегулирование холда идемпотентно).
    """
    lock = " FOR UPDATE OF j" if connection.features.has_select_for_update_of else ""
    with transaction.atomic():
        # Строка задания под блокировкой и её холд — одним запросом; цена, параметры и модель задания
        # после создания не меняются, их берём из job
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {rows.columns(Hold, 'h')} FROM {rows.table(GenerationJob)} j "  # noqa: S608
                f"JOIN {rows.table(Hold)} h ON h.id = j.hold_id WHERE j.id = %s{lock}",
                [job.pk],
            )
            row = cursor.fetchone()
        assert row is not None, f"job {job.pk} has no hold"
        amount = job_charge(job=job, delivered=delivered)
        ledger.capture(hold=rows.from_row(Hold, row), amount=amount, savepoint=False)
        now = timezone.now()
        with connection.cursor() as cursor:
            # Сообщение статуса — тем же оператором: его удаляют сразу после урегулирования
            cursor.execute(
                f"UPDATE {rows.table(GenerationJob)} SET status = %s, charged = %s, delivered_at = %s, "  # noqa: S608
                "finished_at = %s, lease_until = NULL WHERE id = %s AND status = %s "
                "RETURNING status_chat_id, status_message_id",
                [JobStatus.DELIVERED.value, amount, now, now, job.pk, JobStatus.GENERATED.value],
            )
            status_ids = cursor.fetchone()
    if status_ids is not None:
        job.status_chat_id, job.status_message_id = status_ids
        job.status = JobStatus.DELIVERED
    return amount


def queue_position(*, job: GenerationJob) -> int:
    """Место в очереди среди заданий того же вида (1 — следующее)."""
    with connection.cursor() as cursor:
        # Сырой SQL: считается на каждое новое задание из вебхука
        cursor.execute(
            f"SELECT count(*) FROM {rows.table(GenerationJob)} "  # noqa: S608
            "WHERE kind = %s AND status = %s AND id <= %s",
            [str(job.kind), JobStatus.QUEUED.value, job.pk],
        )
        row = cursor.fetchone()
    return int(row[0]) if row is not None else 0
