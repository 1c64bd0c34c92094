"""Служебные модели эксплуатации."""

from django.db import models


class PipelineProbe(models.Model):
    """Проба конвейера: веб/команда публикует задачу, воркер отмечает выполнение в БД.

    Так оператор (и тест) видит, что путь «брокер → воркер → PostgreSQL» цел целиком.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "проба конвейера"
        verbose_name_plural = "пробы конвейера"

    def __str__(self) -> str:
        return f"probe #{self.pk}"
