"""Цена запроса: перебор всех разрешённых каталогом комбинаций против независимого расчёта дробями."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from fractions import Fraction

import pytest

from botapp.billing.errors import PricingError
from botapp.billing.pricing import Factors, ImageRequest, VideoRequest, price_tokens, pricing_factors
from botapp.models import GenerationModel

pytestmark = pytest.mark.django_db

FACTORS = [
    Factors(Decimal(100), Decimal(2)),
    Factors(Decimal("133.33"), Decimal("1.25")),
    Factors(Decimal(1), Decimal("1.001")),
]


def _expected(cost: Fraction, factors: Factors) -> int:
    return math.ceil(cost * Fraction(factors.tokens_per_usd) * Fraction(factors.markup))


def _image_cases(model: GenerationModel) -> list[ImageRequest]:
    refs = range(model.max_reference_images + 1)
    outputs = range(1, model.max_outputs + 1)
    return [
        ImageRequest(size=size, outputs=n, reference_images=r, aspect_ratio=ratio)
        for size, n, r, ratio in itertools.product(model.image_sizes, outputs, refs, model.aspect_ratios)
    ]


@pytest.mark.parametrize("factors", FACTORS)
def test_every_allowed_image_request_is_priced_exactly(factors: Factors) -> None:
    models = GenerationModel.objects.filter(kind="image")
    assert models.count() == 3
    checked = 0
    for model in models:
        for request in _image_cases(model):
            cost = (
                Fraction(str(model.unit_prices[request.size])) * request.outputs
                + Fraction(str(model.input_image_price)) * request.reference_images
            )
            assert price_tokens(model, request, factors) == _expected(cost, factors), (model.slug, request)
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("factors", FACTORS)
def test_every_allowed_video_request_is_priced_exactly(factors: Factors) -> None:
    for model in GenerationModel.objects.filter(kind="video"):
        assert model.video_options
        for duration, resolution, aspect in model.video_options:
            for refs in range(model.max_reference_images + 1):
                request = VideoRequest(duration, resolution, aspect, reference_images=refs)
                cost = Fraction(str(model.unit_prices[resolution])) * duration
                assert price_tokens(model, request, factors) == _expected(cost, factors)


def test_default_image_price_with_default_factors() -> None:
    model = GenerationModel.objects.get(slug="nano-banana-2")
    # 0.067 $ × 100 × 2 = 13.4 → 14: округление вверх, без погрешности float
    assert price_tokens(model, ImageRequest(), pricing_factors()) == 14
    assert price_tokens(model, ImageRequest(outputs=4), pricing_factors()) == 54


def test_a_price_that_is_a_whole_number_is_not_rounded_up() -> None:
    model = GenerationModel.objects.get(slug="veo-3-1-fast")
    # 0.15 × 8 = 1.2 $ × 100 × 2 = 240 ровно
    assert price_tokens(model, VideoRequest(8, "720p", "16:9"), pricing_factors()) == 240


@pytest.mark.parametrize(
    ("slug", "request_"),
    [
        ("nano-banana-2", ImageRequest(size="8K")),
        ("nano-banana-2", ImageRequest(outputs=0)),
        ("nano-banana-2", ImageRequest(outputs=5)),
        ("nano-banana-2", ImageRequest(reference_images=11)),
        ("nano-banana-2", ImageRequest(reference_images=-1)),
        ("nano-banana-2", ImageRequest(aspect_ratio="7:3")),
        ("nano-banana-2", VideoRequest(8, "720p", "16:9")),
        ("veo-3-1-fast", ImageRequest()),
        ("veo-3-1-fast", VideoRequest(4, "1080p", "16:9")),
        ("veo-3-1-fast", VideoRequest(8, "720p", "1:1")),
        ("veo-3-1-lite", VideoRequest(8, "4k", "16:9")),
        ("veo-3-1-lite", VideoRequest(8, "720p", "16:9", reference_images=2)),
    ],
)
def test_requests_outside_the_catalogue_are_refused(slug: str, request_: ImageRequest | VideoRequest) -> None:
    model = GenerationModel.objects.get(slug=slug)
    with pytest.raises(PricingError):
        price_tokens(model, request_, pricing_factors())


def test_the_admin_factors_change_the_price() -> None:
    from botapp.models import PricingSettings

    PricingSettings.objects.filter(pk=1).update(markup=Decimal("3"))
    model = GenerationModel.objects.get(slug="nano-banana-2")
    assert price_tokens(model, ImageRequest(), pricing_factors()) == 21  # 0.067 × 100 × 3 = 20.1


def test_the_seed_makes_the_smallest_package_buy_a_few_default_images() -> None:
    from botapp.models import TokenPackage

    smallest = TokenPackage.objects.filter(is_enabled=True).order_by("stars").first()
    assert smallest is not None
    model = GenerationModel.objects.get(is_default=True, kind="image")
    assert smallest.total_tokens // price_tokens(model, ImageRequest(), pricing_factors()) >= 3
    assert not model.price_verified_at  # цены засеяны как непроверенные
    assert "unverified" in model.price_source
