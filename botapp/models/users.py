"""Пользователи Telegram и их настройки."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Language(models.TextChoices):
    RU = "ru", "Русский"
    EN = "en", "English"


class TelegramUser(models.Model):
    """Пользователь бота; обновляется при каждом апдейте (имя, username, язык клиента)."""

    telegram_id = models.BigIntegerField(unique=True)
    first_name = models.CharField(max_length=256, blank=True)
    last_name = models.CharField(max_length=256, blank=True)
    username = models.CharField(max_length=64, blank=True, db_index=True)
    language_code = models.CharField(max_length=16, blank=True, help_text="из клиента Telegram")
    language = models.CharField(
        max_length=2,
        choices=Language.choices,
        blank=True,
        help_text="выбран пользователем; важнее language_code",
    )
    is_premium = models.BooleanField(default=False)
    is_blocked = models.BooleanField(default=False, help_text="пользователь заблокировал бота")
    is_banned = models.BooleanField(default=False, help_text="заблокирован персоналом")
    ban_notice_at = models.DateTimeField(null=True, blank=True)
    send_originals_as_files = models.BooleanField(default=True)
    skip_confirmation = models.BooleanField(default=False)
    default_image_model = models.CharField(
        max_length=32, blank=True, help_text="slug модели; пусто — по умолчанию"
    )
    default_aspect_ratio = models.CharField(max_length=8, default="1:1")
    default_outputs = models.PositiveSmallIntegerField(default=1)
    start_payload = models.CharField(
        max_length=64, blank=True, help_text="ref_<code> / promo_<code> из /start"
    )
    referral_code = models.CharField(max_length=16, unique=True, null=True, blank=True)
    lava_email = models.EmailField(blank=True, help_text="для чеков lava.top; стирается /delete_me")
    data_erased_at = models.DateTimeField(
        null=True, blank=True, help_text="/delete_me: задания, начатые раньше, стираются и после завершения"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Не auto_now: его ставит только апдейт от пользователя (upsert вебхука). Сохранение из админки не
    # «последний визит» — иначе стёршему данные снова пошли бы рассылки (broadcasts.NOT_OPTED_OUT)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "пользователь"
        verbose_name_plural = "пользователи"

    def __str__(self) -> str:
        return f"@{self.username}" if self.username else f"{self.first_name} ({self.telegram_id})"

    @property
    def effective_language(self) -> str:
        if self.language:
            return self.language
        return Language.EN if self.language_code and not self.language_code.startswith("ru") else Language.RU
