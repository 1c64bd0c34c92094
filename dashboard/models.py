"""Модели панели: профиль сотрудника (связь с Telegram), ветки поддержки, рассылки."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from botapp.models import TelegramUser


class StaffProfile(models.Model):
    """Сотрудник ↔ его Telegram: «сначала мне» в рассылках и оповещения о новых обращениях."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    telegram_id = models.BigIntegerField(null=True, blank=True, unique=True)
    link_code = models.CharField(
        max_length=32, blank=True, help_text="одноразовый код для /start staff_<код>"
    )
    link_code_expires_at = models.DateTimeField(null=True, blank=True)
    linked_at = models.DateTimeField(null=True, blank=True)
    notify_support = models.BooleanField(default=True, help_text="присылать в Telegram новые обращения")

    class Meta:
        verbose_name = "профиль сотрудника"
        verbose_name_plural = "профили сотрудников"
        constraints = [
            models.UniqueConstraint(
                fields=["link_code"], condition=~Q(link_code=""), name="staff_link_code_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.telegram_id or 'Telegram не привязан'})"


class SupportThread(models.Model):
    """Переписка пользователя с поддержкой: сообщения — в ChatLogEntry (is_support), здесь — состояние."""

    class Status(models.TextChoices):
        OPEN = "open", "открыта"
        RESOLVED = "resolved", "решена"

    user = models.OneToOneField(TelegramUser, on_delete=models.CASCADE, related_name="support_thread")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    topic = models.CharField(max_length=32, blank=True, help_text="payment — из /paysupport")
    unread_count = models.PositiveIntegerField(default=0)
    last_activity_at = models.DateTimeField(db_index=True)
    last_user_message_at = models.DateTimeField(null=True, blank=True)
    last_read_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "обращение в поддержку"
        verbose_name_plural = "обращения в поддержку"

    def __str__(self) -> str:
        return f"{self.user} · {self.get_status_display()}"


class Broadcast(models.Model):
    """Рассылка: HTML-текст, необязательные фото и одна кнопка-ссылка, аудитория, расписание."""

    class Audience(models.TextChoices):
        ALL = "all", "все"
        LANGUAGE = "language", "по языку"
        PAID = "paid", "платившие"
        ACTIVE = "active", "активные за N дней"
        IDS = "ids", "список Telegram id"

    class Status(models.TextChoices):
        DRAFT = "draft", "черновик"
        SCHEDULED = "scheduled", "запланирована"
        SENDING = "sending", "отправляется"
        PAUSED = "paused", "на паузе"
        CANCELLED = "cancelled", "отменена"
        DONE = "done", "завершена"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(help_text="HTML Telegram: <b>, <i>, <a href>…")
    photo_key = models.CharField(max_length=200, blank=True, help_text="фото в хранилище медиа")
    photo_file_id = models.CharField(max_length=256, blank=True, help_text="после первой отправки — file_id")
    button_text = models.CharField(max_length=64, blank=True)
    button_url = models.URLField(blank=True)
    audience = models.CharField(max_length=10, choices=Audience.choices, default=Audience.ALL)
    audience_language = models.CharField(max_length=2, blank=True)
    audience_active_days = models.PositiveIntegerField(null=True, blank=True)
    audience_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "рассылка"
        verbose_name_plural = "рассылки"
        permissions = [("send_broadcast", "Может отправлять рассылки")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"


class BroadcastRecipient(models.Model):
    """Получатель рассылки: статус на каждого — перезапуск продолжает, никому не отправляя дважды."""

    class Status(models.TextChoices):
        PENDING = "pending", "ожидает"
        SENT = "sent", "отправлено"
        BLOCKED = "blocked", "заблокировал бота"
        FAILED = "failed", "ошибка"

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients")
    user = models.ForeignKey(TelegramUser, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="взят отправителем до")
    message_id = models.BigIntegerField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "получатель рассылки"
        verbose_name_plural = "получатели рассылки"
        constraints = [models.UniqueConstraint(fields=["broadcast", "user"], name="broadcast_recipient_once")]
        indexes = [models.Index(fields=["broadcast", "status"])]

    def __str__(self) -> str:
        return f"{self.broadcast_id} → {self.user_id}: {self.status}"
