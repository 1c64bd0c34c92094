"""Хранилище медиа: настоящий supabase-py против локального Storage и локальный диск."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from botapp.providers import storage
from botapp.providers.base import ProviderTransientError
from botapp.providers.storage import (
    LocalMediaStorage,
    StorageError,
    StorageNotFoundError,
    StorageTransientError,
    SupabaseMediaStorage,
    media_storage,
)
from botapp.tests.support.fake_supabase import FakeSupabase, fake_service_key
from botapp.tests.support.fakes import hung_listener

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + b"\r\n--boundary-like\r\n"
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(4096)

BAD_KEYS = [
    "",
    "../x.png",
    "jobs/../../etc/passwd",
    "/etc/passwd",
    "jobs//0.png",
    "jobs/1/",
    ".hidden",
    "jobs/./0.png",
    "jobs\\1\\0.png",
    "jobs/1/0.png\x00",
    "jobs/%2e%2e/0.png",
    "jobs/1/0 1.png",
    "a/" * 300 + "x",
]


@pytest.fixture
def service_key() -> str:
    return fake_service_key()


@pytest.fixture
def fake(service_key: str) -> Iterator[FakeSupabase]:
    with FakeSupabase(service_key) as server:
        yield server


@pytest.fixture
def supabase(fake: FakeSupabase, settings: Any) -> SupabaseMediaStorage:
    fake.serve_media(settings)
    chosen = media_storage()
    assert isinstance(chosen, SupabaseMediaStorage)
    return chosen


@pytest.fixture
def local(tmp_path: Path, settings: Any) -> LocalMediaStorage:
    settings.MEDIA_STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://bot.example"
    chosen = media_storage()
    assert isinstance(chosen, LocalMediaStorage)
    return chosen


# --- Supabase ----------------------------------------------------------------------------------


def test_put_uploads_to_the_image_bucket_with_the_content_type_and_service_key(
    supabase: SupabaseMediaStorage, fake: FakeSupabase, service_key: str
) -> None:
    supabase.put(kind="image", key="jobs/123/0.png", data=PNG, content_type="image/png")

    stored = fake.objects[("images", "jobs/123/0.png")]
    assert (stored.data, stored.content_type) == (PNG, "image/png")
    (upload,) = fake.calls("POST")
    assert upload.path == "/storage/v1/object/images/jobs/123/0.png"
    assert upload.headers["authorization"] == f"Bearer {service_key}"
    assert upload.headers["apikey"] == service_key
    assert upload.headers["x-upsert"] == "true"
    assert upload.part_content_type == "image/png"
    assert upload.body_size > len(PNG)


def test_video_goes_to_the_video_bucket(supabase: SupabaseMediaStorage, fake: FakeSupabase) -> None:
    supabase.put(kind="video", key="jobs/7/0.mp4", data=MP4, content_type="video/mp4")

    assert set(fake.objects) == {("videos", "jobs/7/0.mp4")}
    assert fake.objects[("videos", "jobs/7/0.mp4")].content_type == "video/mp4"
    assert supabase.get(kind="video", key="jobs/7/0.mp4") == MP4
    with pytest.raises(StorageNotFoundError):
        supabase.get(kind="image", key="jobs/7/0.mp4")


def test_a_retried_put_for_the_same_key_succeeds_and_keeps_the_latest_bytes(
    supabase: SupabaseMediaStorage, fake: FakeSupabase
) -> None:
    supabase.put(kind="image", key="jobs/1/0.png", data=b"first", content_type="image/png")
    supabase.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")

    assert [c.status for c in fake.calls("POST")] == [200, 200]
    assert supabase.get(kind="image", key="jobs/1/0.png") == PNG


def test_a_duplicate_answer_on_retry_counts_as_success(
    supabase: SupabaseMediaStorage, fake: FakeSupabase
) -> None:
    supabase.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")
    fake.duplicate_even_with_upsert = True

    supabase.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")

    assert [c.status for c in fake.calls("POST")] == [200, 400]
    assert fake.objects[("images", "jobs/1/0.png")].data == PNG


def test_get_returns_the_bytes_and_a_missing_key_is_not_found(supabase: SupabaseMediaStorage) -> None:
    supabase.put(kind="image", key="jobs/2/1.png", data=PNG, content_type="image/png")

    assert supabase.get(kind="image", key="jobs/2/1.png") == PNG
    with pytest.raises(StorageNotFoundError):
        supabase.get(kind="image", key="jobs/2/9.png")


def test_a_signed_url_downloads_the_bytes_until_it_expires(
    supabase: SupabaseMediaStorage, fake: FakeSupabase
) -> None:
    supabase.put(kind="video", key="jobs/5/0.mp4", data=MP4, content_type="video/mp4")

    url = supabase.signed_url(kind="video", key="jobs/5/0.mp4", expires_s=600)

    assert url.startswith(f"{fake.base_url}/storage/v1/object/sign/videos/jobs/5/0.mp4?token=")
    assert fake.calls("POST")[-1].json_body == {"expiresIn": "600"}
    fresh = httpx.get(url)  # без ключа: ссылку откроет кто угодно, как Telegram или браузер
    assert (fresh.status_code, fresh.headers["content-type"], fresh.content) == (200, "video/mp4", MP4)
    fake.advance(601)
    assert httpx.get(url).status_code == 400


def test_signed_urls_sign_a_page_of_keys_in_one_request_and_skip_missing_ones(
    supabase: SupabaseMediaStorage, fake: FakeSupabase
) -> None:
    for index in range(3):
        supabase.put(
            kind="image", key=f"jobs/6/{index}.png", data=PNG + bytes([index]), content_type="image/png"
        )
    keys = ["jobs/6/0.png", "jobs/404/0.png", "jobs/6/1.png", "jobs/6/2.png"]
    signs_before = len(fake.calls("POST"))

    urls = supabase.signed_urls(kind="image", keys=keys, expires_s=600)

    [sign] = fake.calls("POST")[signs_before:]
    assert sign.path == "/storage/v1/object/sign/images"
    assert sign.json_body == {"paths": keys, "expiresIn": "600"}
    assert sorted(urls) == ["jobs/6/0.png", "jobs/6/1.png", "jobs/6/2.png"]
    for index in range(3):
        assert httpx.get(urls[f"jobs/6/{index}.png"]).content == PNG + bytes([index])


def test_local_signed_urls_match_single_signing(local: LocalMediaStorage) -> None:
    local.put(kind="image", key="jobs/7/0.png", data=PNG, content_type="image/png")
    [(key, url)] = local.signed_urls(kind="image", keys=["jobs/7/0.png"], expires_s=60).items()
    assert key == "jobs/7/0.png"
    assert url.startswith("https://bot.example/media/s/")


def test_signing_a_missing_object_is_not_found(supabase: SupabaseMediaStorage) -> None:
    with pytest.raises(StorageNotFoundError):
        supabase.signed_url(kind="image", key="jobs/404/0.png", expires_s=60)


def test_delete_removes_and_ignores_missing_keys(supabase: SupabaseMediaStorage, fake: FakeSupabase) -> None:
    supabase.put(kind="image", key="jobs/3/0.png", data=PNG, content_type="image/png")
    supabase.put(kind="image", key="jobs/3/1.png", data=PNG, content_type="image/png")

    supabase.delete(kind="image", keys=["jobs/3/0.png", "jobs/3/1.png", "jobs/3/never.png"])
    supabase.delete(kind="image", keys=["jobs/3/0.png"])

    assert fake.objects == {}
    assert fake.calls("DELETE")[0].path == "/storage/v1/object/images"
    assert fake.calls("DELETE")[0].json_body == {
        "prefixes": ["jobs/3/0.png", "jobs/3/1.png", "jobs/3/never.png"]
    }


def test_delete_of_nothing_sends_nothing(supabase: SupabaseMediaStorage, fake: FakeSupabase) -> None:
    supabase.delete(kind="video", keys=[])

    assert fake.requests == []


def test_without_the_service_key_storage_rejects_the_request(fake: FakeSupabase, service_key: str) -> None:
    anon = httpx.post(f"{fake.base_url}/storage/v1/object/images/jobs/1/0.png", content=b"x")
    assert anon.status_code == 401
    wrong = SupabaseMediaStorage(
        url=fake.base_url,
        service_key=fake_service_key(role="anon"),
        buckets={"image": "images", "video": "videos"},
    )

    with pytest.raises(StorageError) as caught:
        wrong.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")

    assert not isinstance(caught.value, ProviderTransientError)
    assert caught.value.category == "forbidden"
    assert fake.objects == {}


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_gateway_errors_are_transient(
    supabase: SupabaseMediaStorage, fake: FakeSupabase, status: int
) -> None:
    fake.fail_next(status)

    with pytest.raises(StorageTransientError):
        supabase.put(kind="image", key="jobs/4/0.png", data=PNG, content_type="image/png")

    supabase.put(kind="image", key="jobs/4/0.png", data=PNG, content_type="image/png")
    assert supabase.get(kind="image", key="jobs/4/0.png") == PNG


def test_an_unknown_bucket_is_a_permanent_error(fake: FakeSupabase, service_key: str) -> None:
    misconfigured = SupabaseMediaStorage(
        url=fake.base_url, service_key=service_key, buckets={"image": "nope", "video": "videos"}
    )

    with pytest.raises(StorageError) as caught:
        misconfigured.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")

    assert not isinstance(caught.value, StorageNotFoundError)


def test_an_unreachable_server_is_transient(service_key: str) -> None:
    with hung_listener() as hung_port:
        pass  # порт освобождён: соединение будет отвергнуто
    refused = SupabaseMediaStorage(
        url=f"http://127.0.0.1:{hung_port}", service_key=service_key, buckets={"image": "i", "video": "v"}
    )

    with pytest.raises(StorageTransientError):
        refused.get(kind="image", key="jobs/1/0.png")


def test_a_hung_server_times_out_as_transient(service_key: str) -> None:
    with hung_listener() as port:
        hung = SupabaseMediaStorage(
            url=f"http://127.0.0.1:{port}",
            service_key=service_key,
            buckets={"image": "i", "video": "v"},
            timeout_s=0.3,
        )
        with pytest.raises(StorageTransientError):
            hung.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")
        # Удаление (срок хранения, /delete_me) — тоже временный сбой: ключи остаются до следующего прохода
        with pytest.raises(StorageTransientError):
            hung.delete(kind="image", keys=["jobs/1/0.png"])


@pytest.mark.parametrize("key", BAD_KEYS)
def test_supabase_rejects_unsafe_keys_before_any_request(
    supabase: SupabaseMediaStorage, fake: FakeSupabase, key: str
) -> None:
    with pytest.raises(StorageError):
        supabase.put(kind="image", key=key, data=PNG, content_type="image/png")
    with pytest.raises(StorageError):
        supabase.signed_url(kind="image", key=key, expires_s=60)

    assert fake.requests == []


def test_the_content_type_must_match_the_kind(supabase: SupabaseMediaStorage, fake: FakeSupabase) -> None:
    for kind, content_type in [("image", "video/mp4"), ("video", "image/png"), ("image", "text/html")]:
        with pytest.raises(StorageError):
            supabase.put(kind=kind, key="jobs/1/0.bin", data=PNG, content_type=content_type)  # type: ignore[arg-type]

    assert fake.requests == []


def test_supabase_backend_without_url_fails_fast_naming_the_setting(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.MEDIA_STORAGE_BACKEND = "supabase"
    settings.SUPABASE_URL = ""

    with pytest.raises(ImproperlyConfigured, match="SUPABASE_URL"):
        media_storage()


# --- Локальный диск ----------------------------------------------------------------------------


def test_local_put_get_delete(local: LocalMediaStorage, tmp_path: Path) -> None:
    local.put(kind="image", key="jobs/9/0.png", data=PNG, content_type="image/png")
    local.put(kind="video", key="jobs/9/0.mp4", data=MP4, content_type="video/mp4")

    assert (tmp_path / "media" / "images" / "jobs" / "9" / "0.png").read_bytes() == PNG
    assert local.get(kind="image", key="jobs/9/0.png") == PNG
    assert local.get(kind="video", key="jobs/9/0.mp4") == MP4

    local.delete(kind="image", keys=["jobs/9/0.png", "jobs/9/missing.png"])

    with pytest.raises(StorageNotFoundError):
        local.get(kind="image", key="jobs/9/0.png")
    assert local.get(kind="video", key="jobs/9/0.mp4") == MP4
    assert not (tmp_path / "media" / "images" / "jobs").exists()  # пустые каталоги убраны


def test_local_put_is_idempotent_and_leaves_no_temporary_files(
    local: LocalMediaStorage, tmp_path: Path
) -> None:
    local.put(kind="image", key="jobs/9/0.png", data=b"first", content_type="image/png")
    local.put(kind="image", key="jobs/9/0.png", data=PNG, content_type="image/png")

    assert local.get(kind="image", key="jobs/9/0.png") == PNG
    names = sorted(p.name for p in (tmp_path / "media").rglob("*") if p.is_file())
    assert names == ["0.png"]  # только данные: тип следует из расширения; без .tmp-


@pytest.mark.parametrize("key", BAD_KEYS)
def test_local_rejects_unsafe_keys_at_put(local: LocalMediaStorage, tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageError):
        local.put(kind="image", key=key, data=PNG, content_type="image/png")

    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_local_refuses_a_symlink_escaping_the_root(local: LocalMediaStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "media" / "images").mkdir(parents=True)
    (tmp_path / "media" / "images" / "jobs").symlink_to(outside)

    with pytest.raises(StorageError):
        local.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")

    assert list(outside.iterdir()) == []


def test_local_signed_url_is_absolute_under_media_s(local: LocalMediaStorage) -> None:
    url = local.signed_url(kind="image", key="jobs/1/0.png", expires_s=60)

    assert url.startswith("https://bot.example/media/s/")
    with pytest.raises(StorageError):
        local.signed_url(kind="image", key="jobs/1/0.png", expires_s=0)


def test_unknown_backend_is_a_configuration_error(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.MEDIA_STORAGE_BACKEND = "s3"

    with pytest.raises(ImproperlyConfigured):
        storage.media_storage()
