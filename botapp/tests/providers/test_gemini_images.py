"""Картинки: настоящий google-genai и адаптер против локального сервера Gemini по HTTP."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from botapp.providers.base import ImageOutput, ProviderPermanentError, ProviderTransientError, ReferenceImage
from botapp.providers.gemini import MAX_REFERENCE_BYTES, GeminiProvider
from botapp.tests.support.fake_gemini import FakeGemini
from botapp.tests.support.processes import free_port

MODEL = "gemini-3.1-flash-image-preview"
KEY = "test-gemini-key"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGemini]:
    # hang_s больше таймаута клиента, но не держит выход из теста
    with FakeGemini(api_key=KEY, hang_s=6) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGemini) -> FakeGemini:
    server.clear()
    return server


@pytest.fixture
def provider(server: FakeGemini) -> GeminiProvider:
    return GeminiProvider(api_key=KEY, base_url=server.base_url)


def generate(
    provider: GeminiProvider,
    prompt: str,
    *,
    model_id: str = MODEL,
    references: list[ReferenceImage] | None = None,
    aspect_ratio: str = "16:9",
    timeout_s: float = 10,
) -> ImageOutput:
    return provider.generate_image(
        model_id=model_id,
        prompt=prompt,
        references=references or [],
        aspect_ratio=aspect_ratio,
        image_size="1K",
        timeout_s=timeout_s,
    )


def png(width: int, height: int, color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def test_it_sends_prompt_ratio_and_size_to_v1beta_and_gets_png_of_that_ratio(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    result = provider.generate_image(
        model_id=MODEL, prompt="кот в шляпе", references=[], aspect_ratio="4:3", image_size="2K", timeout_s=10
    )

    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    config = request.body["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "4:3", "imageSize": "2K"}
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert request.prompt() == "кот в шляпе"
    assert request.inline_images() == []
    assert result.data.startswith(b"\x89PNG")
    assert result.mime_type == "image/png"
    # Настоящие размеры Gemini: 4:3 в 2K — 2368×1728, в пределах допуска
    assert (result.width, result.height) == (2368, 1728)
    assert Image.open(io.BytesIO(result.data)).size == (2368, 1728)
    assert result.offline is False


def test_it_sends_each_reference_as_inline_image(fake: FakeGemini, provider: GeminiProvider) -> None:
    refs = [ReferenceImage(png(64, 64, "red"), "image/png"), ReferenceImage(png(32, 48, "blue"), "image/png")]

    generate(provider, "совмести два предмета", references=refs)

    [request] = fake.requests
    sent = request.inline_images()
    assert [mime for mime, _ in sent] == ["image/png", "image/png"]
    assert [data for _, data in sent] == [refs[0].data, refs[1].data]


def test_it_reencodes_an_oversized_reference_below_7_mb(fake: FakeGemini, provider: GeminiProvider) -> None:
    noise = Image.frombytes("RGB", (2048, 2048), os.urandom(2048 * 2048 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    big = out.getvalue()
    assert len(big) > 12_000_000

    generate(provider, "отредактируй фото", references=[ReferenceImage(big, "image/png")])

    [(mime, data)] = fake.requests[0].inline_images()
    assert mime == "image/jpeg"
    assert len(data) <= MAX_REFERENCE_BYTES
    assert Image.open(io.BytesIO(data)).format == "JPEG"


def test_429_is_transient_with_retry_after_and_exactly_one_request(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    with pytest.raises(ProviderTransientError) as caught:
        generate(provider, "квота [429]")

    assert caught.value.category == "rate_limited"
    assert caught.value.retry_after == 7
    assert len(fake.requests) == 1  # SDK не повторил запрос сам


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors_are_transient_without_hidden_retries(
    fake: FakeGemini, provider: GeminiProvider, code: int
) -> None:
    with pytest.raises(ProviderTransientError) as caught:
        generate(provider, f"перегрузка [{code}]")

    assert caught.value.category == "provider_unavailable"
    assert len(fake.requests) == 1


def test_counted_429_fails_twice_then_succeeds(fake: FakeGemini, provider: GeminiProvider) -> None:
    prompt = "дважды [429x2] отказ"
    for _ in range(2):
        with pytest.raises(ProviderTransientError):
            generate(provider, prompt)

    assert generate(provider, prompt).width == 1344
    assert len(fake.requests) == 3


def test_a_hanging_server_is_a_transient_timeout_within_the_call_timeout(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderTransientError) as caught:
        generate(provider, "зависни [hang]", timeout_s=1)

    assert caught.value.category == "timeout"
    assert time.monotonic() - started < 5
    assert fake.requests[0].headers["x-server-timeout"] == "1"


@pytest.mark.parametrize(
    ("keyword", "category"),
    [("[blocked]", "safety"), ("[unsafe]", "safety"), ("[textonly]", "no_image"), ("[noimage]", "no_image")],
)
def test_blocked_or_empty_answers_are_permanent(
    fake: FakeGemini, provider: GeminiProvider, keyword: str, category: str
) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        generate(provider, f"что-то {keyword}")

    assert caught.value.category == category
    assert len(fake.requests) == 1


def test_interim_thought_image_is_ignored(fake: FakeGemini, provider: GeminiProvider) -> None:
    result = generate(provider, "подумай [thought]", aspect_ratio="9:16")

    parts = fake.requests[0].body["contents"][0]["parts"]
    assert len(parts) == 1
    assert (result.width, result.height) == (768, 1344)


def test_an_answer_with_only_a_thought_image_has_no_image(fake: FakeGemini, provider: GeminiProvider) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        generate(provider, "подумай и забудь [thoughtonly]", aspect_ratio="1:1")

    assert caught.value.category == "no_image"


def test_an_image_of_the_wrong_ratio_is_a_permanent_error(fake: FakeGemini, provider: GeminiProvider) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        generate(provider, "широкий [wrongratio]", aspect_ratio="21:9")

    assert caught.value.category == "wrong_aspect_ratio"


@pytest.mark.parametrize(("code", "category"), [(400, "invalid_request"), (403, "forbidden")])
def test_client_errors_are_permanent(
    fake: FakeGemini, provider: GeminiProvider, code: int, category: str
) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        generate(provider, f"ошибка [{code}]")

    assert caught.value.category == category


def test_an_unknown_model_is_a_permanent_not_found(fake: FakeGemini, provider: GeminiProvider) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        generate(provider, "кот", model_id="gemini-0-imaginary")

    assert caught.value.category == "not_found"


def test_a_wrong_key_is_permanent(server: FakeGemini) -> None:
    wrong = GeminiProvider(api_key="not-the-key", base_url=server.base_url)

    with pytest.raises(ProviderPermanentError) as caught:
        generate(wrong, "кот")

    assert caught.value.category == "invalid_request"


def test_a_refused_connection_is_transient() -> None:
    nowhere = GeminiProvider(api_key=KEY, base_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(ProviderTransientError) as caught:
        generate(nowhere, "кот", timeout_s=2)

    assert caught.value.category == "connection"


def test_the_fake_answers_a_keyless_request_like_google(server: FakeGemini) -> None:
    response = httpx.post(f"{server.base_url}/v1beta/models/{MODEL}:generateContent", json={"contents": []})

    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
