"""Видео Veo в режиме API-ключа: три REST-вызова адаптера против локального сервера Gemini."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from PIL import Image

from botapp.providers.base import ProviderPermanentError, ProviderTransientError, ReferenceImage, VideoPoll
from botapp.providers.gemini import GeminiProvider
from botapp.tests.support.fake_gemini import FakeGemini

MODEL = "veo-3.1-fast-generate-preview"
KEY = "test-gemini-key"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGemini) -> FakeGemini:
    server.clear()
    return server


@pytest.fixture
def provider(server: FakeGemini) -> GeminiProvider:
    return GeminiProvider(api_key=KEY, base_url=server.base_url)


def submit(
    provider: GeminiProvider, prompt: str, image: ReferenceImage | None = None, *, model: str = MODEL
) -> str:
    """Veo 6 с 1080p 9:16 с негативным промптом — общий запрос тестов Veo (ключ и Vertex)."""
    return provider.submit_video(
        model_id=model,
        prompt=prompt,
        image=image,
        duration_s=6,
        resolution="1080p",
        aspect_ratio="9:16",
        negative_prompt="размыто",
        timeout_s=10,
    )


# Параметры Veo, которые должен отправить submit (ключ и Vertex отправляют одинаково)
SUBMITTED_PARAMETERS = {
    "sampleCount": 1,
    "durationSeconds": 6,
    "aspectRatio": "9:16",
    "resolution": "1080p",
    "negativePrompt": "размыто",
}


def poll_until_done(provider: GeminiProvider, name: str, limit: int = 10) -> list[VideoPoll]:
    polls = []
    for _ in range(limit):
        polls.append(provider.poll_video(operation_name=name, timeout_s=10))
        if polls[-1].done:
            break
    return polls


def test_submit_posts_predict_long_running_and_returns_the_operation_name(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    name = submit(provider, "кот на сёрфе")

    assert name.startswith(f"models/{MODEL}/operations/")
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", f"/v1beta/models/{MODEL}:predictLongRunning")
    assert request.headers["x-goog-api-key"] == KEY
    assert request.body["instances"] == [{"prompt": "кот на сёрфе"}]
    assert request.body["parameters"] == SUBMITTED_PARAMETERS


def test_the_first_frame_goes_as_standard_base64(fake: FakeGemini, provider: GeminiProvider) -> None:
    out = io.BytesIO()
    Image.new("RGB", (90, 160), "teal").save(out, "PNG")
    frame = out.getvalue()

    submit(provider, "оживи картинку", image=ReferenceImage(frame, "image/png"))

    image = fake.requests[0].body["instances"][0]["image"]
    assert image == {"bytesBase64Encoded": base64.b64encode(frame).decode(), "mimeType": "image/png"}


def test_polling_reports_running_then_downloads_a_real_mp4(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    name = submit(provider, "закат [polls:3]")

    polls = poll_until_done(provider, name)

    assert [p.done for p in polls] == [False, False, True]
    video = polls[-1].data
    assert video is not None
    assert video[4:8] == b"ftyp"
    assert polls[-1].mime_type == "video/mp4"
    operation_gets = fake.requests_to("/operations/")
    assert [r.path for r in operation_gets] == [f"/v1beta/{name}"] * 3
    [download] = fake.requests_to(":download")
    assert download.path.startswith("/v1beta/files/")
    assert download.query["alt"] == ["media"]
    assert download.headers["x-goog-api-key"] == KEY


def test_a_safety_filtered_video_is_permanent(fake: FakeGemini, provider: GeminiProvider) -> None:
    name = submit(provider, "что-то запретное [filtered]")

    with pytest.raises(ProviderPermanentError) as caught:
        provider.poll_video(operation_name=name, timeout_s=10)

    assert caught.value.category == "video_filtered"
    assert fake.requests_to(":download") == []


def test_a_failed_operation_is_classified(fake: FakeGemini, provider: GeminiProvider) -> None:
    internal = submit(provider, "сбой [opfail]")
    invalid = submit(provider, "плохо [opinvalid]")

    # Завершённая с ошибкой операция не станет готовой: окончательно, даже при «внутренней» ошибке
    with pytest.raises(ProviderPermanentError) as internal_error:
        provider.poll_video(operation_name=internal, timeout_s=10)
    with pytest.raises(ProviderPermanentError) as permanent:
        provider.poll_video(operation_name=invalid, timeout_s=10)

    assert internal_error.value.category == "video_failed"
    assert permanent.value.category == "invalid_request"


def test_submit_errors_are_classified_without_retries(fake: FakeGemini, provider: GeminiProvider) -> None:
    with pytest.raises(ProviderTransientError) as limited:
        submit(provider, "квота [429]")
    with pytest.raises(ProviderTransientError) as busy:
        submit(provider, "перегрузка [503]")
    with pytest.raises(ProviderPermanentError) as bad:
        submit(provider, "ошибка [400]")

    assert (limited.value.category, limited.value.retry_after) == ("rate_limited", 7)
    assert busy.value.category == "provider_unavailable"
    assert bad.value.category == "invalid_request"
    assert len(fake.requests) == 3


def test_an_unknown_operation_is_permanent(fake: FakeGemini, provider: GeminiProvider) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        provider.poll_video(operation_name=f"models/{MODEL}/operations/nosuchop", timeout_s=10)

    assert caught.value.category == "not_found"
