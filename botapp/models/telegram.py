"""Приём апдейтов: входящий ящик (дедупликация по update_id) и состояние диалога."""

from __future__ import annotations

from django.db import models


class InboxUpdate(models.Model):
    """Апдейт Telegram; UNIQUE update_id — основа обработки ровно один раз."""

    class Status(models.TextChoices):
        PROCESSING = "processing"
        DONE = "done"

    update_id = models.BigIntegerField(unique=True)
    update_type = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    attempts = models.PositiveSmallIntegerField(default=1)
    lease_until = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "входящий апдейт"
        verbose_name_plural = "входящие апдейты"

    def __str__(self) -> str:
        return f"update {self.update_id} ({self.status})"


class ConversationState(models.Model):
    """Шаг диалога пользователя — в БД, а не в памяти процесса: веб-процессов несколько."""

    user = models.OneToOneField("botapp.TelegramUser", on_delete=models.CASCADE, related_name="conversation")
    state = models.CharField(max_length=32, blank=True)
    data = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "состояние диалога"
        verbose_name_plural = "состояния диалогов"

    def __str__(self) -> str:
        return f"{self.user_id}: {self.state or '-'}"
