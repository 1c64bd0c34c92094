"""Сервисы заданий без воркера: проверка запроса, защита расходов, холд при создании, захват, отмена."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from botapp.billing.errors import InsufficientFunds
from botapp.generation import delivery, jobs, sweeper
from botapp.models import GenerationJob, GenerationModel, GenerationSettings, Hold, JobStatus
from botapp.tasks import generation as tasks
from botapp.tests.billing.factories import balance, user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support.broker import broker_purge

pytestmark = pytest.mark.django_db


def _create(user: object, key: str = "k1", prompt: str = "a cat", **params: Any) -> GenerationJob:
    return image_job_make(user, key=key, prompt=prompt, **params)  # type: ignore[arg-type]


def test_creating_a_job_holds_its_price_in_the_same_transaction() -> None:
    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    assert job.status == JobStatus.QUEUED
    assert job.hold is not None
    assert job.hold.amount == job.price == 14
    assert balance(user) == (86, 14)


def test_the_same_key_returns_the_same_job() -> None:
    user = user_make()
    user_fund(user, 100)
    first = _create(user)
    second = _create(user)
    assert first.pk == second.pk
    assert balance(user) == (86, 14)


def test_without_tokens_nothing_is_created() -> None:
    user = user_make()
    user_fund(user, 10)
    with pytest.raises(InsufficientFunds):
        _create(user)
    assert not GenerationJob.objects.exists()
    assert not Hold.objects.exists()


@pytest.mark.parametrize(
    ("prompt", "params", "code"),
    [
        ("", {}, "prompt_empty"),
        ("x" * 2001, {}, "prompt_too_long"),
        ("a cat", {"size": "8K"}, "bad_parameters"),
        ("a cat", {"outputs": 5}, "bad_parameters"),
    ],
)
def test_invalid_requests_are_refused_before_any_money_moves(
    prompt: str, params: dict[str, Any], code: str
) -> None:
    user = user_make()
    user_fund(user, 100)
    with pytest.raises(jobs.JobRefused) as refused:
        _create(user, prompt=prompt, **params)
    assert refused.value.code == code
    assert balance(user) == (100, 0)


def test_the_global_switch_pauses_generation_with_the_staff_text() -> None:
    user = user_make()
    user_fund(user, 100)
    GenerationSettings.objects.update_or_create(
        pk=1, defaults={"generation_enabled": False, "paused_text_en": "Back at 10:00."}
    )
    with pytest.raises(jobs.JobRefused) as refused:
        _create(user)
    assert refused.value.code == "paused"
    assert refused.value.details["text_en"] == "Back at 10:00."
    assert balance(user) == (100, 0)


def test_a_disabled_model_is_refused() -> None:
    user = user_make()
    user_fund(user, 100)
    GenerationModel.objects.filter(slug="nano-banana-2").update(
        is_enabled=False, disabled_text_en="Maintenance"
    )
    with pytest.raises(jobs.JobRefused) as refused:
        _create(user)
    assert refused.value.code == "model_disabled"


def test_the_daily_cost_cap_stops_new_jobs() -> None:
    user = user_make()
    user_fund(user, 1000)
    GenerationSettings.objects.update_or_create(pk=1, defaults={"daily_cost_cap_usd": Decimal("0.15")})
    _create(user, key="a")
    _create(user, key="b")  # 2 × 0.067 = 0.134
    with pytest.raises(jobs.JobRefused) as refused:
        _create(user, key="c")
    assert refused.value.code == "daily_cap"
    assert GenerationJob.objects.count() == 2


def test_a_second_claimant_gets_nothing() -> None:
    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    assert claimed.attempts == 1
    assert jobs.job_claim(job_id=job.pk) == jobs.Claim.TAKEN


@override_settings(GENERATION_MAX_IN_FLIGHT_PER_USER=1)
def test_the_per_user_limit_makes_the_next_job_wait_without_copies_from_the_sweeper() -> None:
    """Сверх лимита — ждать; ожидание переопубликует само себя с отметкой, и сборщик не плодит копии."""
    user = user_make()
    user_fund(user, 100)
    first, second = _create(user, key="a"), _create(user, key="b")
    assert isinstance(jobs.job_claim(job_id=first.pk), GenerationJob)
    assert jobs.job_claim(job_id=second.pk) == jobs.Claim.BUSY
    long_ago = timezone.now() - timedelta(seconds=settings.GENERATION_QUEUE_REPUBLISH_S + 5)
    GenerationJob.objects.filter(pk=second.pk).update(published_at=long_ago)
    broker_purge("generation")
    tasks.run_job.run(second.pk)  # тело задачи: занято → снова в очередь через 5 с
    assert broker_purge("generation") == 1
    assert sweeper.jobs_sweep().republished == 0
    jobs.job_fail(job=first, category="test")


def test_cancel_before_the_provider_starts_returns_the_tokens_once() -> None:
    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    assert jobs.job_cancel(job_id=job.pk, user=user) == "cancelled"
    assert jobs.job_cancel(job_id=job.pk, user=user) == "finished"
    assert balance(user) == (100, 0)
    assert GenerationJob.objects.get().status == JobStatus.CANCELLED


def test_cancel_after_the_provider_started_is_refused() -> None:
    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    jobs.job_mark_provider_started(job=job)
    assert jobs.job_cancel(job_id=job.pk, user=user) == "started"
    assert balance(user) == (86, 14)
    jobs.job_fail(job=job, category="test")  # убрать холд, чтобы сверка после теста была чистой


def test_expiry_by_the_sweeper_releases_the_hold() -> None:
    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    GenerationJob.objects.filter(pk=job.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    report = sweeper.jobs_sweep()
    assert report.expired == 1
    assert GenerationJob.objects.get().status == JobStatus.EXPIRED
    assert balance(user) == (100, 0)


@pytest.fixture
def deliveries_published() -> Iterator[Callable[[], int]]:
    """Сколько задач доставки опубликовано в очередь (и убрать их)."""
    broker_purge("delivery")
    yield lambda: broker_purge("delivery")
    broker_purge("delivery")


def _generated() -> GenerationJob:
    """Задание пользователя со 100 токенами, захваченное и сгенерированное (аренда доставки взята)."""
    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    assert jobs.job_mark_generated(job=claimed)
    return job


def test_the_delivery_lease_keeps_a_second_deliverer_and_the_sweeper_off_until_it_lapses(
    deliveries_published: Callable[[], int],
) -> None:
    job = _generated()
    # Переход в GENERATED взял аренду доставки: вторая копия доставки и сборщик не вмешиваются
    assert not jobs.job_delivery_claim(job_id=job.pk)
    assert delivery.job_deliver(job_id=job.pk).outcome == "skipped"
    assert sweeper.jobs_sweep().deliveries == 0
    assert deliveries_published() == 0
    # Доставщик умер: аренда истекла — сборщик публикует доставку, её копия берёт аренду одна
    lapsed = timezone.now() - timedelta(seconds=sweeper.DELIVERY_GRACE_S + 1)
    GenerationJob.objects.filter(pk=job.pk).update(lease_until=lapsed)
    assert sweeper.jobs_sweep().deliveries == 1
    assert deliveries_published() == 1
    assert jobs.job_delivery_claim(job_id=job.pk)
    assert not jobs.job_delivery_claim(job_id=job.pk)
    jobs.job_fail(job=job, category="test")


def test_a_deferred_delivery_is_left_to_its_scheduled_retry(deliveries_published: Callable[[], int]) -> None:
    job = _generated()
    long_ago = timezone.now() - timedelta(hours=1)
    GenerationJob.objects.filter(pk=job.pk).update(generated_at=long_ago)
    # 429 с retry_after 30 с: до повтора аренда за ним, сборщик копию не публикует
    jobs.job_delivery_hold(job_id=job.pk, seconds=30)
    assert sweeper.jobs_sweep().deliveries == 0
    assert deliveries_published() == 0
    assert not jobs.job_delivery_claim(job_id=job.pk)
    jobs.job_delivery_hold(job_id=job.pk, seconds=0)
    assert jobs.job_delivery_claim(job_id=job.pk)
    jobs.job_fail(job=job, category="test")


def test_a_generation_that_used_half_its_time_limit_hands_the_delivery_to_a_task_of_its_own(
    deliveries_published: Callable[[], int],
) -> None:
    job = _generated()
    long_ago = time.monotonic() - settings.CELERY_TASK_SOFT_TIME_LIMIT
    tasks._deliver(job.pk, generated_by=long_ago)
    assert deliveries_published() == 1
    # Ничего не отправлено: аренда отпущена для задачи delivery.deliver_job, задание ждёт её
    job.refresh_from_db()
    assert job.status == JobStatus.GENERATED
    assert jobs.job_delivery_claim(job_id=job.pk)
    jobs.job_fail(job=job, category="test")


@pytest.mark.django_db(transaction=True)
def test_a_long_upload_renews_its_delivery_lease_while_it_runs(
    deliveries_published: Callable[[], int],
) -> None:
    job = _generated()
    GenerationJob.objects.filter(pk=job.pk).update(lease_until=None)

    async def upload() -> str:
        """Одна загрузка дольше аренды (видео 50 МБ): продлевать надо во время вызова, а не после."""
        await asyncio.sleep(0.35)
        return "sent"

    before = timezone.now()
    with override_settings(DELIVERY_LEASE_S=0.3):
        assert asyncio.run(delivery.with_lease_heartbeat(job.pk, upload())) == "sent"
    job.refresh_from_db()
    # Продлено во время загрузки (до неё аренды не было): копия доставки её не получит
    assert job.lease_until is not None
    assert job.lease_until > before + timedelta(seconds=0.35)
    jobs.job_fail(job=job, category="test")
    # Транзакционный тест: job_fail на коммите публикует уведомление о провале — убираем его
    assert deliveries_published() == 1


def test_the_inline_deliverer_leaves_a_failure_notice_to_the_task_that_owns_it() -> None:
    job = _generated()
    # Между переходом в GENERATED и чтением задания персонал вернул холд: уведомит задача job_fail
    jobs.job_fail(job=job, category="staff_release")
    assert delivery.job_deliver(job_id=job.pk, claimed=True).outcome == "skipped"
    job.refresh_from_db()
    assert job.notified_at is None


@override_settings(CELERY_WORKER_CONCURRENCY=2)
def test_the_eta_counts_waves_of_worker_slots_not_single_jobs() -> None:
    """Место 5 при двух слотах — третья «волна»: три средних длительности, а не пять."""
    from botapp.generation import progress

    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    progress._eta_cache[job.model_id] = (time.monotonic(), 12.0)
    try:
        assert progress.job_eta(job=job, position=1) == 12.0
        assert progress.job_eta(job=job, position=2) == 12.0
        assert progress.job_eta(job=job, position=5) == 36.0
    finally:
        progress._eta_cache.pop(job.model_id, None)
    jobs.job_fail(job=job, category="test")


def _finishing_meanwhile(monkeypatch: pytest.MonkeyPatch, claimed: GenerationJob) -> None:
    """Воркер переводит задание в GENERATED ровно между чтением задания и job_fail (окно гонки)."""
    fail = jobs.job_fail

    def generated_then_fail(**kwargs: Any) -> bool:
        assert jobs.job_mark_generated(job=claimed)
        monkeypatch.setattr(jobs, "job_fail", fail)
        return fail(**kwargs)

    monkeypatch.setattr(jobs, "job_fail", generated_then_fail)


def _claimed_past_deadline() -> GenerationJob:
    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    GenerationJob.objects.filter(pk=job.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    return claimed


def test_the_sweeper_does_not_expire_a_job_that_got_its_result_after_the_sweep_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claimed = _claimed_past_deadline()
    _finishing_meanwhile(monkeypatch, claimed)
    assert sweeper.jobs_sweep().expired == 0
    job = GenerationJob.objects.get(pk=claimed.pk)
    # Результат доставит держатель аренды: холд цел, пользователю не скажут «не вышло»
    assert job.status == JobStatus.GENERATED
    assert balance(job.user) == (86, 14)
    jobs.job_fail(job=job, category="test")


def test_a_video_poll_past_its_deadline_does_not_expire_a_result_saved_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botapp.generation import runner

    claimed = _claimed_past_deadline()
    GenerationJob.objects.filter(pk=claimed.pk).update(operation_name="models/veo/operations/1")
    load = jobs.job_load

    def load_then_finish(*, job_id: int) -> GenerationJob | None:
        # Дубликат опроса прочитал RUNNING; тем временем другой опрос сохранил ролик
        loaded = load(job_id=job_id)
        assert jobs.job_mark_generated(job=claimed)
        return loaded

    monkeypatch.setattr(jobs, "job_load", load_then_finish)
    assert runner.job_poll(job_id=claimed.pk).outcome == "taken"
    job = GenerationJob.objects.get(pk=claimed.pk)
    assert job.status == JobStatus.GENERATED
    assert balance(job.user) == (86, 14)
    jobs.job_fail(job=job, category="test")


def test_staff_release_of_a_stale_running_job_leaves_a_result_saved_meanwhile() -> None:
    from django.contrib.auth.models import User

    from botapp.generation import staff

    claimed = _claimed_past_deadline()
    GenerationJob.objects.filter(pk=claimed.pk).update(lease_until=timezone.now() - timedelta(minutes=5))
    # Персонал открыл задание, когда оно «висело» с истёкшей арендой; потом воркер его доделал
    stale = GenerationJob.objects.get(pk=claimed.pk)
    assert jobs.job_mark_generated(job=claimed)
    with pytest.raises(staff.StaffActionRefused):
        staff.job_release_stuck(job=stale, actor=User.objects.create_user("support"))
    job = GenerationJob.objects.get(pk=claimed.pk)
    assert job.status == JobStatus.GENERATED
    assert balance(job.user) == (86, 14)
    jobs.job_fail(job=job, category="test")


def test_a_partial_result_is_charged_from_the_held_price_after_staff_changed_the_catalog() -> None:
    user = user_make()
    user_fund(user, 100)
    job = _create(user, outputs=2)
    assert job.price == 27  # 2 × 0.067 $ × 200 = 26.8 → 27
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    assert jobs.job_mark_generated(job=claimed)
    # Пока задание шло, персонал оставил модели один выход и убрал размер 1K
    model = GenerationModel.objects.get(slug="nano-banana-2")
    model.max_outputs = 1
    model.image_sizes = [size for size in model.image_sizes if size != "1K"]
    model.save()
    claimed.model = model
    # Доставлен один выход из двух: доля показанной цены, ⌈27 / 2⌉, без пересчёта по каталогу
    assert jobs.job_settle_delivered(job=claimed, delivered=1) == 14
    job.refresh_from_db()
    assert (job.status, job.charged) == (JobStatus.DELIVERED, 14)
    assert balance(user) == (86, 0)


def _generated_long_ago(**params: Any) -> GenerationJob:
    """Сгенерировано 2 ч назад, аренда доставки истекла: доставка всё это время не удавалась."""
    user = user_make()
    user_fund(user, 100)
    job = _create(user, **params)
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    assert jobs.job_mark_generated(job=claimed)
    GenerationJob.objects.filter(pk=job.pk).update(
        generated_at=timezone.now() - timedelta(hours=2), lease_until=timezone.now() - timedelta(minutes=1)
    )
    for index in range(int(params.get("outputs", 1))):
        jobs.job_output_store(
            job=claimed,
            index=index,
            status="ok",
            storage_key=f"jobs/never-{uuid.uuid4().hex}/{index}.png",
            mime_type="image/png",
        )
    return job


@override_settings(DELIVERY_GIVE_UP_S=3600)
def test_a_delivery_that_never_succeeded_gives_up_and_returns_the_tokens() -> None:
    job = _generated_long_ago()
    # Объектов в хранилище нет и Telegram не вызывается: срок вышел раньше любой попытки отправки
    assert delivery.job_deliver(job_id=job.pk).outcome == "rejected"
    job.refresh_from_db()
    assert (job.status, job.error_category) == (JobStatus.FAILED, "delivery_failed")
    assert balance(job.user) == (100, 0)
    # Извинение пошлёт задача, которую опубликовал job_fail (notified_at пока пуст)
    assert job.notified_at is None


@override_settings(DELIVERY_GIVE_UP_S=3600)
def test_a_delivery_that_gives_up_after_part_of_an_album_charges_what_arrived() -> None:
    from botapp.models import JobOutput

    job = _generated_long_ago(outputs=2)
    JobOutput.objects.filter(job=job, index=0).update(photo_file_id="AgAD-first", message_id=7)
    assert delivery.job_deliver(job_id=job.pk).outcome == "delivered"
    job.refresh_from_db()
    assert (job.status, job.charged) == (JobStatus.DELIVERED, 14)  # ⌈27 / 2⌉
    assert balance(job.user) == (86, 0)


def test_a_result_missing_from_storage_is_not_retried_forever() -> None:
    job = _generated_long_ago()
    GenerationJob.objects.filter(pk=job.pk).update(generated_at=timezone.now())
    # Объекта в хранилище нет (стёрт, бакет сменили): повтор доставки не поможет
    assert delivery.job_deliver(job_id=job.pk).outcome == "rejected"
    job.refresh_from_db()
    assert (job.status, job.error_category) == (JobStatus.FAILED, "storage_error")
    assert balance(job.user) == (100, 0)


def test_a_long_retry_after_from_the_provider_is_not_republished_early_by_the_sweeper(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from botapp.generation import runner
    from botapp.providers.base import ProviderTransientError

    user = user_make()
    user_fund(user, 100)
    job = _create(user)
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    broker_purge("generation")
    # 503 с Retry-After 300 с — дольше, чем сборщик ждёт потерянное сообщение (120 с)
    busy = ProviderTransientError("503 UNAVAILABLE", category="provider_unavailable", retry_after=300)
    with django_capture_on_commit_callbacks(execute=True):
        assert runner._transient(claimed, busy).outcome == "requeued"
    assert broker_purge("generation") == 1
    job.refresh_from_db()
    assert job.published_at is not None
    assert job.published_at >= timezone.now() + timedelta(seconds=290)
    # Через 130 с по часам сборщика (срок повтора ещё не наступил) копии нет
    with override_settings(GENERATION_QUEUE_REPUBLISH_S=settings.GENERATION_QUEUE_REPUBLISH_S - 130):
        assert sweeper.jobs_sweep().republished == 0
    assert broker_purge("generation") == 0
    jobs.job_fail(job=job, category="test")
