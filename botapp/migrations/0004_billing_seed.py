"""Начальные данные биллинга: системные счета, коэффициенты цен, каталог моделей, пакеты звёзд.

Цены провайдера — из ../shared/API_NOTES.md §1.9: «source: third-party reports of the Gemini API
pricing page, checked 2026-11-28, unverified». В админке они помечены «не проверено», пока
сотрудник не подтвердит каждую. Промокоды миграциями не создаются.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

PRICE_SOURCE = "third-party reports of the Gemini API pricing page, checked 2026-11-28, unverified"

SYSTEM_ACCOUNTS = ["sales:stars", "sales:lava", "consumption", "promotions", "referrals", "adjustments"]

IMAGE_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]


def _veo_options(resolutions: list[str]) -> list[list[Any]]:
    """Veo 3.1: 4/6/8 с при 720p; 1080p и 4k — только 8 с (ограничение API)."""
    options: list[list[Any]] = []
    for aspect in ("16:9", "9:16"):
        for resolution in resolutions:
            durations = [4, 6, 8] if resolution == "720p" else [8]
            options += [[duration, resolution, aspect] for duration in durations]
    return options


MODELS: list[dict[str, Any]] = [
    {
        "slug": "nano-banana-2",
        "kind": "image",
        "provider_model_id": "gemini-3.1-flash-image-preview",
        "name_ru": "Nano Banana 2",
        "name_en": "Nano Banana 2",
        "is_default": True,
        "order": 10,
        "max_prompt_length": 2000,
        "max_reference_images": 10,
        "aspect_ratios": IMAGE_RATIOS,
        "image_sizes": ["1K", "2K", "4K"],
        "max_outputs": 4,
        "price_unit": "image",
        "unit_prices": {"512px": "0.045", "1K": "0.067", "2K": "0.101", "4K": "0.151"},
    },
    {
        "slug": "nano-banana-pro",
        "kind": "image",
        "provider_model_id": "gemini-3-pro-image-preview",
        "name_ru": "Nano Banana Pro",
        "name_en": "Nano Banana Pro",
        "order": 20,
        "max_prompt_length": 2000,
        "max_reference_images": 10,
        "aspect_ratios": IMAGE_RATIOS,
        "image_sizes": ["1K", "2K", "4K"],
        "max_outputs": 4,
        "price_unit": "image",
        "unit_prices": {"1K": "0.134", "2K": "0.134", "4K": "0.24"},
        "input_image_price": "0.0011",
    },
    {
        "slug": "nano-banana",
        "kind": "image",
        "provider_model_id": "gemini-2.5-flash-image",
        "name_ru": "Nano Banana",
        "name_en": "Nano Banana",
        # Google объявил отключение модели 2026-10-02
        "is_enabled": False,
        "disabled_text_ru": "Модель отключена провайдером.",
        "disabled_text_en": "The provider has retired this model.",
        "order": 30,
        "max_prompt_length": 2000,
        "max_reference_images": 3,
        "aspect_ratios": IMAGE_RATIOS,
        "image_sizes": ["1K"],
        "max_outputs": 4,
        "price_unit": "image",
        "unit_prices": {"1K": "0.039"},
    },
    {
        "slug": "veo-3-1",
        "kind": "video",
        "provider_model_id": "veo-3.1-generate-preview",
        "name_ru": "Veo 3.1",
        "name_en": "Veo 3.1",
        "order": 10,
        "max_prompt_length": 1500,
        "max_reference_images": 1,
        "aspect_ratios": ["16:9", "9:16"],
        "video_options": _veo_options(["720p", "1080p", "4k"]),
        "price_unit": "second",
        "unit_prices": {"720p": "0.40", "1080p": "0.40", "4k": "0.60"},
    },
    {
        "slug": "veo-3-1-fast",
        "kind": "video",
        "provider_model_id": "veo-3.1-fast-generate-preview",
        "name_ru": "Veo 3.1 Fast",
        "name_en": "Veo 3.1 Fast",
        "is_default": True,
        "order": 20,
        "max_prompt_length": 1500,
        "max_reference_images": 1,
        "aspect_ratios": ["16:9", "9:16"],
        "video_options": _veo_options(["720p", "1080p", "4k"]),
        "price_unit": "second",
        "unit_prices": {"720p": "0.15", "1080p": "0.15", "4k": "0.35"},
    },
    {
        "slug": "veo-3-1-lite",
        "kind": "video",
        "provider_model_id": "veo-3.1-lite-generate-preview",
        "name_ru": "Veo 3.1 Lite",
        "name_en": "Veo 3.1 Lite",
        "order": 30,
        "max_prompt_length": 1500,
        "max_reference_images": 1,
        "aspect_ratios": ["16:9", "9:16"],
        "video_options": _veo_options(["720p", "1080p"]),
        "price_unit": "second",
        "unit_prices": {"720p": "0.05", "1080p": "0.08"},
    },
]

# Самый маленький пакет покупает несколько картинок модели по умолчанию (14 токенов за 1K)
PACKAGES = [
    {"title_ru": "Старт", "title_en": "Starter", "stars": 50, "tokens": 50, "bonus_percent": 0, "order": 10},
    {
        "title_ru": "Базовый",
        "title_en": "Basic",
        "stars": 150,
        "tokens": 150,
        "bonus_percent": 10,
        "order": 20,
    },
    {"title_ru": "Про", "title_en": "Pro", "stars": 500, "tokens": 500, "bonus_percent": 20, "order": 30},
    {
        "title_ru": "Студия",
        "title_en": "Studio",
        "stars": 1500,
        "tokens": 1500,
        "bonus_percent": 30,
        "order": 40,
    },
]


def seed(apps: Any, schema_editor: Any) -> None:
    Account = apps.get_model("botapp", "Account")
    for code in SYSTEM_ACCOUNTS:
        Account.objects.get_or_create(kind="system", code=code)
    apps.get_model("botapp", "PricingSettings").objects.get_or_create(pk=1)
    GenerationModel = apps.get_model("botapp", "GenerationModel")
    for row in MODELS:
        GenerationModel.objects.update_or_create(
            slug=row["slug"], defaults={**row, "price_source": PRICE_SOURCE}
        )
    TokenPackage = apps.get_model("botapp", "TokenPackage")
    if not TokenPackage.objects.exists():
        for package in PACKAGES:
            TokenPackage.objects.create(**package)


class Migration(migrations.Migration):
    dependencies = [("botapp", "0003_billing_and_catalog")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
