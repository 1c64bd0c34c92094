"""Цена запроса в токенах. Одна чистая функция: бот показывает ровно её, списание равно ей (или меньше).

Розничная цена = ceil(себестоимость USD × токенов за доллар × наценка). Считается в Decimal,
чтобы 0.067 × 100 × 2 не превращалось в 13.400000000000002 и не округлялось вверх лишний раз.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from botapp.billing.errors import PricingError
from botapp.models import GenerationModel, PricingSettings


@dataclass(frozen=True)
class Factors:
    tokens_per_usd: Decimal
    markup: Decimal


@dataclass(frozen=True)
class ImageRequest:
    size: str = "1K"
    outputs: int = 1
    reference_images: int = 0
    aspect_ratio: str | None = None


@dataclass(frozen=True)
class VideoRequest:
    duration: int
    resolution: str
    aspect_ratio: str
    reference_images: int = 0


def pricing_factors() -> Factors:
    return factors_of(PricingSettings.objects.get_or_create(pk=1)[0])


def factors_of(row: PricingSettings) -> Factors:
    """Множители цены из строки настроек (её читают и отдельно, и вместе с защитой расходов)."""
    return Factors(tokens_per_usd=Decimal(row.tokens_per_usd), markup=Decimal(row.markup))


def provider_cost_usd(model: GenerationModel, request: ImageRequest | VideoRequest) -> Decimal:
    """Себестоимость у провайдера; параметры вне каталога модели — PricingError."""
    prices = {tier: Decimal(str(value)) for tier, value in model.unit_prices.items()}
    if request.reference_images > model.max_reference_images or request.reference_images < 0:
        raise PricingError(f"{model.slug}: at most {model.max_reference_images} reference images")
    inputs = Decimal(model.input_image_price) * request.reference_images
    if isinstance(request, ImageRequest):
        if model.kind != GenerationModel.Kind.IMAGE:
            raise PricingError(f"{model.slug} is not an image model")
        if request.size not in model.image_sizes or request.size not in prices:
            raise PricingError(f"{model.slug}: size {request.size} not offered")
        if not 1 <= request.outputs <= model.max_outputs:
            raise PricingError(f"{model.slug}: 1..{model.max_outputs} outputs")
        if request.aspect_ratio is not None and request.aspect_ratio not in model.aspect_ratios:
            raise PricingError(f"{model.slug}: aspect ratio {request.aspect_ratio} not offered")
        return prices[request.size] * request.outputs + inputs
    if model.kind != GenerationModel.Kind.VIDEO:
        raise PricingError(f"{model.slug} is not a video model")
    option = [request.duration, request.resolution, request.aspect_ratio]
    if option not in model.video_options or request.resolution not in prices:
        raise PricingError(f"{model.slug}: {option} not offered")
    return prices[request.resolution] * request.duration + inputs


def price_tokens(model: GenerationModel, request: ImageRequest | VideoRequest, factors: Factors) -> int:
    """Цена в целых токенах, округление вверх; ненулевая себестоимость никогда не даёт 0."""
    cost = provider_cost_usd(model, request)
    retail = cost * factors.tokens_per_usd * factors.markup
    return int(retail.to_integral_value(rounding=ROUND_CEILING))
