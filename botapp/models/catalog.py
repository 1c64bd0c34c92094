"""Каталог моделей генерации: ограничения и себестоимость. Строка в БД — источник правды."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class GenerationModel(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "изображение"
        VIDEO = "video", "видео"

    class PriceUnit(models.TextChoices):
        IMAGE = "image", "за изображение"
        SECOND = "second", "за секунду видео"

    slug = models.SlugField(max_length=32, unique=True)
    kind = models.CharField(max_length=5, choices=Kind.choices)
    provider = models.CharField(max_length=16, default="gemini")
    provider_model_id = models.CharField(max_length=64)
    name_ru = models.CharField(max_length=64)
    name_en = models.CharField(max_length=64)
    is_enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="модель по умолчанию для своего вида")
    order = models.PositiveSmallIntegerField(default=0)
    disabled_text_ru = models.CharField(max_length=200, blank=True)
    disabled_text_en = models.CharField(max_length=200, blank=True)

    # Ограничения запроса
    max_prompt_length = models.PositiveIntegerField(default=2000)
    max_reference_images = models.PositiveSmallIntegerField(default=0)
    aspect_ratios = models.JSONField(default=list, help_text='["1:1", "16:9", …]')
    image_sizes = models.JSONField(default=list, blank=True, help_text='["1K", "2K", "4K"] (изображения)')
    max_outputs = models.PositiveSmallIntegerField(default=1)
    video_options = models.JSONField(
        default=list, blank=True, help_text="разрешённые [длительность, разрешение, соотношение] (видео)"
    )

    # Себестоимость у провайдера, USD
    price_unit = models.CharField(max_length=6, choices=PriceUnit.choices)
    unit_prices = models.JSONField(help_text='USD за единицу по уровню: {"1K": "0.067", "2K": "0.101"}')
    input_image_price = models.DecimalField(
        max_digits=8, decimal_places=5, default=0, help_text="USD за входное изображение"
    )
    price_source = models.CharField(max_length=300, blank=True)
    price_verified_at = models.DateTimeField(null=True, blank=True)
    price_verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "модель генерации"
        verbose_name_plural = "каталог моделей"
        ordering = ["kind", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_default=True), name="generation_model_one_default_per_kind"
            ),
            models.CheckConstraint(
                condition=Q(max_outputs__gte=1) & Q(max_outputs__lte=4), name="outputs_1_4"
            ),
        ]

    def __str__(self) -> str:
        return self.name_en

    def display_name(self, language: str) -> str:
        return self.name_ru if language == "ru" else self.name_en


class GenerationSettings(models.Model):
    """Защита расходов: общий выключатель и суточный потолок себестоимости; одна строка (pk=1)."""

    generation_enabled = models.BooleanField(default=True)
    paused_text_ru = models.CharField(
        max_length=300, default="Генерация временно приостановлена. Попробуйте позже.", blank=True
    )
    paused_text_en = models.CharField(
        max_length=300, default="Generation is paused for now. Please try again later.", blank=True
    )
    daily_cost_cap_usd = models.DecimalField(
        max_digits=10, decimal_places=2, default=0, help_text="0 — без потолка; сутки — по TIME_ZONE"
    )
    provider_429_alert_threshold = models.PositiveIntegerField(
        default=20, help_text="сколько 429 от провайдера за 5 минут поднимают оповещение"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "настройки генерации"
        verbose_name_plural = "настройки генерации"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="generation_settings_singleton")]

    def __str__(self) -> str:
        return "включена" if self.generation_enabled else "приостановлена"
