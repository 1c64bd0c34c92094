"""Режим Vertex AI: настоящий google-genai с сервисным аккаунтом против локального сервера Gemini.

Ключ сервисного аккаунта создаётся при запуске (в репозитории ключей нет), token_uri указывает на
подделку: google-auth меняет JWT на токен там же, куда потом идут вызовы Vertex.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.test import override_settings
from PIL import Image

from botapp.providers.base import (
    ImageOutput,
    ProviderPermanentError,
    ProviderTransientError,
    ReferenceImage,
    VideoPoll,
)
from botapp.providers.gemini import VERTEX_API_VERSION, GeminiProvider, vertex_base_url
from botapp.tests.providers.test_veo import SUBMITTED_PARAMETERS
from botapp.tests.providers.test_veo import submit as veo_submit
from botapp.tests.support.fake_gemini import FakeGemini, RecordedRequest, fake_mp4, service_account_info
from botapp.tests.support.processes import free_port

IMAGE_MODEL = "gemini-3.1-flash-image-preview"
VIDEO_MODEL = "veo-3.1-fast-generate-001"
PROJECT = "test-project"
LOCATION = "us-central1"
RESOURCE = f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGemini]:
    with FakeGemini(hang_s=6) as fake:
        yield fake


@pytest.fixture(scope="module")
def account(server: FakeGemini) -> dict[str, str]:
    return service_account_info(server.token_uri, project=PROJECT)


@pytest.fixture
def fake(server: FakeGemini) -> FakeGemini:
    server.clear()
    return server


def vertex(base_url: str, info: dict[str, str], **kwargs: str) -> GeminiProvider:
    return GeminiProvider(
        api_key="",
        base_url=base_url,
        use_vertex=True,
        project=PROJECT,
        location=LOCATION,
        credentials_json=json.dumps(info),
        **kwargs,
    )


@pytest.fixture
def provider(server: FakeGemini, account: dict[str, str]) -> GeminiProvider:
    # Новый провайдер — новые credentials: каждый тест сам получает токен
    return vertex(server.base_url, account)


def generate(
    provider: GeminiProvider,
    prompt: str,
    *,
    references: list[ReferenceImage] | None = None,
    aspect_ratio: str = "16:9",
    image_size: str = "1K",
) -> ImageOutput:
    return provider.generate_image(
        model_id=IMAGE_MODEL,
        prompt=prompt,
        references=references or [],
        aspect_ratio=aspect_ratio,
        image_size=image_size,
        timeout_s=10,
    )


def submit(provider: GeminiProvider, prompt: str, image: ReferenceImage | None = None) -> str:
    return veo_submit(provider, prompt, image, model=VIDEO_MODEL)


def png(width: int, height: int, color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def vertex_calls(fake: FakeGemini) -> list[RecordedRequest]:
    return fake.requests_to("/publishers/google/models/")


def only_token(fake: FakeGemini) -> str:
    [request] = fake.requests_to("/oauth2/token")
    assert request.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    issued = [token for token, claims in fake.tokens.items() if claims["iss"].startswith("bot@")]
    assert issued, "подделка не выдала токен"
    return issued[-1]


# --- картинки -------------------------------------------------------------------------------------


def test_text_to_image_goes_to_the_vertex_path_with_a_bearer_token(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    result = generate(provider, "кот в шляпе", aspect_ratio="4:3", image_size="2K")

    token = only_token(fake)
    [request] = vertex_calls(fake)
    assert request.method == "POST"
    assert request.path == f"/{VERTEX_API_VERSION}/{RESOURCE}/{IMAGE_MODEL}:generateContent"
    assert request.headers["authorization"] == f"Bearer {token}"
    assert "x-goog-api-key" not in request.headers
    config = request.body["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "4:3", "imageSize": "2K"}
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert request.prompt() == "кот в шляпе"
    assert request.inline_images() == []
    assert (result.width, result.height) == (2368, 1728)
    assert result.data.startswith(b"\x89PNG")


def test_the_token_is_fetched_once_for_many_calls(fake: FakeGemini, provider: GeminiProvider) -> None:
    generate(provider, "первый")
    generate(provider, "второй")

    token = only_token(fake)  # ровно один обмен JWT на токен
    assert [r.headers["authorization"] for r in vertex_calls(fake)] == [f"Bearer {token}"] * 2


def test_an_edit_sends_the_reference_inline(fake: FakeGemini, provider: GeminiProvider) -> None:
    reference = ReferenceImage(png(64, 48, "red"), "image/png")

    generate(provider, "сделай синим", references=[reference])

    [request] = vertex_calls(fake)
    assert request.inline_images() == [("image/png", reference.data)]
    assert request.prompt() == "сделай синим"


@pytest.mark.parametrize("keyword", ["[blocked]", "[unsafe]"])
def test_a_safety_block_is_permanent(fake: FakeGemini, provider: GeminiProvider, keyword: str) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        generate(provider, f"что-то {keyword}")

    assert caught.value.category == "safety"
    assert len(vertex_calls(fake)) == 1


def test_429_is_transient_with_retry_after_and_one_request(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    with pytest.raises(ProviderTransientError) as caught:
        generate(provider, "квота [429]")

    assert caught.value.category == "rate_limited"
    assert caught.value.retry_after == 7
    assert len(vertex_calls(fake)) == 1  # SDK не повторил сам


# --- Veo ------------------------------------------------------------------------------------------


def test_text_to_video_submits_polls_and_returns_inline_bytes(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    name = submit(provider, "кот на сёрфе [polls:2]")

    assert name.startswith(f"{RESOURCE}/{VIDEO_MODEL}/operations/")
    [request] = vertex_calls(fake)
    assert request.path == f"/{VERTEX_API_VERSION}/{RESOURCE}/{VIDEO_MODEL}:predictLongRunning"
    assert request.headers["authorization"] == f"Bearer {only_token(fake)}"
    assert request.body["instances"] == [{"prompt": "кот на сёрфе [polls:2]"}]
    assert request.body["parameters"] == SUBMITTED_PARAMETERS

    first = provider.poll_video(operation_name=name, timeout_s=10)
    second = provider.poll_video(operation_name=name, timeout_s=10)

    assert first == VideoPoll(done=False, meta={"operation": name})
    assert second.done is True
    assert second.data == fake_mp4()
    assert second.mime_type == "video/mp4"
    polls = vertex_calls(fake)[1:]
    assert [r.path for r in polls] == [
        f"/{VERTEX_API_VERSION}/{RESOURCE}/{VIDEO_MODEL}:fetchPredictOperation"
    ] * 2
    assert all(r.body == {"operationName": name} for r in polls)
    assert all("x-goog-api-key" not in r.headers for r in polls)


def test_the_first_frame_goes_as_base64_with_its_mime(fake: FakeGemini, provider: GeminiProvider) -> None:
    frame = png(90, 160, "teal")

    submit(provider, "оживи", image=ReferenceImage(frame, "image/png"))

    [request] = vertex_calls(fake)
    image = request.body["instances"][0]["image"]
    assert image["mimeType"] == "image/png"
    assert base64.b64decode(image["bytesBase64Encoded"]) == frame


def test_a_filtered_video_is_permanent(fake: FakeGemini, provider: GeminiProvider) -> None:
    name = submit(provider, "что-то [filtered]")

    with pytest.raises(ProviderPermanentError) as caught:
        provider.poll_video(operation_name=name, timeout_s=10)

    assert caught.value.category == "video_filtered"


def test_429_while_polling_is_transient_and_the_operation_survives(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    name = submit(provider, "квота на опросе [poll429x1]")

    with pytest.raises(ProviderTransientError) as caught:
        provider.poll_video(operation_name=name, timeout_s=10)
    assert caught.value.category == "rate_limited"

    assert provider.poll_video(operation_name=name, timeout_s=10).done is True


# --- учётные данные и адреса ----------------------------------------------------------------------


def test_a_revoked_key_is_permanent_and_reaches_no_model(fake: FakeGemini, server: FakeGemini) -> None:
    info = service_account_info(server.token_uri, project=PROJECT, account="revoked")
    revoked = vertex(server.base_url, info)

    with pytest.raises(ProviderPermanentError) as caught:
        generate(revoked, "кот")

    assert caught.value.category == "forbidden"
    assert vertex_calls(fake) == []


def test_an_unreachable_token_endpoint_is_transient(fake: FakeGemini, server: FakeGemini) -> None:
    nowhere = service_account_info(f"http://127.0.0.1:{free_port()}/oauth2/token", project=PROJECT)

    with pytest.raises(ProviderTransientError) as caught:
        generate(vertex(server.base_url, nowhere), "кот")

    assert caught.value.category == "connection"
    assert vertex_calls(fake) == []


def test_the_sdk_environment_does_not_redirect_the_client(
    fake: FakeGemini, server: FakeGemini, account: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Без явных base_url и api_version SDK взял бы их отсюда
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")

    generate(vertex(server.base_url, account), "кот")

    [request] = vertex_calls(fake)
    assert request.path.startswith(f"/{VERTEX_API_VERSION}/projects/")


def test_from_settings_reads_the_credentials_file(
    fake: FakeGemini, server: FakeGemini, account: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account))
    with override_settings(
        GEMINI_API_KEY="",
        GEMINI_API_BASE_URL=server.base_url,
        USE_VERTEX_AI=True,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        GOOGLE_CLOUD_LOCATION=LOCATION,
        GOOGLE_APPLICATION_CREDENTIALS=str(path),
        GOOGLE_APPLICATION_CREDENTIALS_JSON="",
    ):
        generate(GeminiProvider.from_settings(), "кот")

    [request] = vertex_calls(fake)
    assert request.path == f"/{VERTEX_API_VERSION}/{RESOURCE}/{IMAGE_MODEL}:generateContent"
    assert request.headers["authorization"] == f"Bearer {only_token(fake)}"


@pytest.mark.parametrize(
    ("base_url", "location", "expected"),
    [
        ("http://127.0.0.1:9/", "us-central1", "http://127.0.0.1:9"),
        (
            "https://generativelanguage.googleapis.com",
            "us-central1",
            "https://us-central1-aiplatform.googleapis.com",
        ),
        ("https://generativelanguage.googleapis.com", "global", "https://aiplatform.googleapis.com"),
        ("", "eu", "https://aiplatform.eu.rep.googleapis.com"),
    ],
)
def test_vertex_base_url_is_ours_or_the_sdk_default(base_url: str, location: str, expected: str) -> None:
    assert vertex_base_url(base_url, location) == expected


# --- экспресс-режим: ключ без проекта ------------------------------------------------------------

EXPRESS = "publishers/google/models"


@pytest.fixture
def express(server: FakeGemini) -> GeminiProvider:
    return GeminiProvider(api_key=server.api_key, base_url=server.base_url, use_vertex=True, project="")


def test_express_mode_sends_the_key_to_the_global_publisher_path(
    fake: FakeGemini, express: GeminiProvider
) -> None:
    result = generate(express, "маяк в тумане", aspect_ratio="1:1", image_size="1K")

    [request] = vertex_calls(fake)
    assert request.path == f"/{VERTEX_API_VERSION}/{EXPRESS}/{IMAGE_MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == fake.api_key
    assert "authorization" not in request.headers
    assert fake.requests_to("/oauth2/token") == []  # без сервисного аккаунта
    assert request.body["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "1K"}
    assert (result.width, result.height) == (1024, 1024)


def test_express_mode_video_submits_and_polls_with_the_key(fake: FakeGemini, express: GeminiProvider) -> None:
    name = submit(express, "волны [polls:1]")
    result = express.poll_video(operation_name=name, timeout_s=10)

    assert name.startswith(f"{EXPRESS}/{VIDEO_MODEL}/operations/")
    submitted, polled = vertex_calls(fake)
    assert submitted.path == f"/{VERTEX_API_VERSION}/{EXPRESS}/{VIDEO_MODEL}:predictLongRunning"
    assert polled.path == f"/{VERTEX_API_VERSION}/{EXPRESS}/{VIDEO_MODEL}:fetchPredictOperation"
    assert all(r.headers["x-goog-api-key"] == fake.api_key for r in (submitted, polled))
    assert (result.done, result.data) == (True, fake_mp4())


def test_express_mode_with_a_wrong_key_is_permanent(fake: FakeGemini, server: FakeGemini) -> None:
    wrong = GeminiProvider(api_key="not-our-key", base_url=server.base_url, use_vertex=True, project="")

    with pytest.raises(ProviderPermanentError):
        generate(wrong, "маяк")
    assert [r.headers["x-goog-api-key"] for r in vertex_calls(fake)] == ["not-our-key"]


def test_vertex_without_project_or_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_PROJECT"):
        GeminiProvider(api_key="", base_url="", use_vertex=True, project="")


def test_the_fake_refuses_vertex_calls_without_an_issued_token(server: FakeGemini) -> None:
    url = f"{server.base_url}/{VERTEX_API_VERSION}/{RESOURCE}/{IMAGE_MODEL}:generateContent"
    for headers in ({}, {"Authorization": "Bearer made-up"}, {"x-goog-api-key": server.api_key}):
        response = httpx.post(url, json={"contents": []}, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"
