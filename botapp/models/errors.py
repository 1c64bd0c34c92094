"""События ошибок, сгруппированные по устойчивому отпечатку (для панели и оповещений)."""

from __future__ import annotations

from django.db import models


class ErrorGroup(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "новая"
        IN_PROGRESS = "in_progress", "в работе"
        RESOLVED = "resolved", "решена"

    fingerprint = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=300)
    source = models.CharField(max_length=64, help_text="где случилась: handler, task, reconciliation…")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "группа ошибок"
        verbose_name_plural = "группы ошибок"

    def __str__(self) -> str:
        return self.title


class ErrorEvent(models.Model):
    group = models.ForeignKey(ErrorGroup, on_delete=models.CASCADE, related_name="events")
    stack = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "событие ошибки"
        verbose_name_plural = "события ошибок"

    def __str__(self) -> str:
        return f"{self.group.title} @ {self.created_at:%Y-%m-%d %H:%M}"
