"""Задания генерации и их результаты. База — источник правды о задании, брокер — только доставщик."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from botapp.models.billing import Hold
from botapp.models.catalog import GenerationModel
from botapp.models.users import TelegramUser


class JobStatus(models.TextChoices):
    QUEUED = "queued", "в очереди"
    RUNNING = "running", "выполняется"
    GENERATED = "generated", "сгенерировано"
    DELIVERED = "delivered", "доставлено"
    FAILED = "failed", "ошибка"
    CANCELLED = "cancelled", "отменено"
    EXPIRED = "expired", "просрочено"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.GENERATED)
TERMINAL_STATUSES = (JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)


class GenerationJob(models.Model):
    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="jobs")
    model = models.ForeignKey(GenerationModel, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=5, choices=GenerationModel.Kind.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    idempotency_key = models.CharField(max_length=96, unique=True, help_text="одна кнопка — одно задание")
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, help_text="aspect_ratio, size, outputs / duration, resolution")
    reference_file_ids = models.JSONField(default=list, blank=True, help_text="file_id фото Telegram")
    source_job = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    price = models.PositiveIntegerField(help_text="цена, показанная пользователю (токены)")
    charged = models.PositiveIntegerField(default=0, help_text="списано по факту доставки")
    cost_usd = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=0,
        help_text="себестоимость у провайдера (оценка по каталогу)",
    )
    hold = models.OneToOneField(Hold, null=True, blank=True, on_delete=models.PROTECT, related_name="job")

    attempts = models.PositiveSmallIntegerField(default=0)
    deadline = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    provider_started = models.BooleanField(
        default=False, help_text="провайдер получил запрос: отмена невозможна"
    )
    operation_name = models.CharField(max_length=200, blank=True, help_text="долгая операция Veo")
    next_poll_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True, help_text="когда задача ушла в брокер")
    error_category = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=500, blank=True)

    status_chat_id = models.BigIntegerField(null=True, blank=True)
    status_message_id = models.BigIntegerField(null=True, blank=True)
    caption_message_id = models.BigIntegerField(
        null=True, blank=True, help_text="подпись с кнопками после альбома"
    )
    notified_at = models.DateTimeField(null=True, blank=True, help_text="пользователь узнал об исходе")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "задание генерации"
        verbose_name_plural = "задания генерации"
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["model", "status", "created_at"]),
            # Список генераций панели и админки — новые сверху по всем заданиям: без индекса — сортировка всех
            models.Index(fields=["-created_at", "-id"], name="job_newest_first"),
            models.Index(
                fields=["next_poll_at"],
                condition=Q(status="running") & ~Q(operation_name=""),
                name="job_poll_due",
            ),
        ]

    def __str__(self) -> str:
        return f"job #{self.pk} {self.kind} {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class JobOutput(models.Model):
    """Один результат задания: файл в хранилище и file_id, под которыми Telegram его запомнил."""

    class Status(models.TextChoices):
        OK = "ok", "готов"
        FAILED = "failed", "не получен"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="outputs")
    index = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=6, choices=Status.choices)
    storage_key = models.CharField(max_length=200, blank=True)
    mime_type = models.CharField(max_length=32, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    error_category = models.CharField(max_length=32, blank=True)
    photo_file_id = models.CharField(max_length=256, blank=True)
    document_file_id = models.CharField(max_length=256, blank=True)
    video_file_id = models.CharField(max_length=256, blank=True)
    message_id = models.BigIntegerField(
        null=True, blank=True, help_text="сообщение с результатом (ответ на него — правка)"
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "результат генерации"
        verbose_name_plural = "результаты генерации"
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="job_output_unique_index")]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.index} {self.status}"
