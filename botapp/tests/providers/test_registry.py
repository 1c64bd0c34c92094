"""Выбор провайдера по настройкам: офлайн или настоящий адаптер, один экземпляр на процесс."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from botapp.providers.gemini import GeminiProvider
from botapp.providers.offline import OfflineProvider
from botapp.providers.registry import generation_provider, reset_generation_provider
from botapp.tests.support.fake_gemini import FakeGemini


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    reset_generation_provider()
    yield
    reset_generation_provider()


@override_settings(GEMINI_OFFLINE=True)
def test_offline_setting_gives_the_offline_provider_once_per_process() -> None:
    provider = generation_provider()

    assert isinstance(provider, OfflineProvider)
    assert generation_provider() is provider


def test_without_offline_the_gemini_adapter_talks_to_the_configured_base_url() -> None:
    with (
        FakeGemini(api_key="settings-key") as fake,  # pragma: allowlist secret
        override_settings(
            GEMINI_OFFLINE=False,
            GEMINI_API_KEY="settings-key",
            GEMINI_API_BASE_URL=fake.base_url,
            USE_VERTEX_AI=False,
        ),
    ):
        provider = generation_provider()
        result = provider.generate_image(
            model_id="gemini-2.5-flash-image",
            prompt="кот",
            references=[],
            aspect_ratio="1:1",
            image_size="1K",
            timeout_s=10,
        )

    assert isinstance(provider, GeminiProvider)
    assert (result.width, result.height) == (1024, 1024)
    assert fake.requests[0].headers["x-goog-api-key"] == "settings-key"


def test_changing_settings_drops_the_cached_provider() -> None:
    with override_settings(GEMINI_OFFLINE=True):
        offline = generation_provider()
    with override_settings(GEMINI_OFFLINE=False, GEMINI_API_KEY="k", USE_VERTEX_AI=False):
        real = generation_provider()

    assert isinstance(offline, OfflineProvider)
    assert isinstance(real, GeminiProvider)
