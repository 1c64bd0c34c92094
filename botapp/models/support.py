"""Журнал переписки: каждое входящее и исходящее сообщение (для поддержки и панели)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ChatLogEntry(models.Model):
    class Direction(models.TextChoices):
        IN = "in", "от пользователя"
        OUT = "out", "от бота"

    user = models.ForeignKey("botapp.TelegramUser", on_delete=models.CASCADE, related_name="chat_log")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    text = models.TextField(blank=True)
    media_type = models.CharField(max_length=16, blank=True)
    file_id = models.CharField(max_length=256, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    is_support = models.BooleanField(default=False, help_text="сообщение в поддержку или ответ поддержки")
    staff_author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "сообщение"
        verbose_name_plural = "журнал переписки"
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.direction} {self.user_id}: {self.text[:40]}"
