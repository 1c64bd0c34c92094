"""GET /media/s/<token>: локальные медиа по подписанной ссылке."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.core import signing
from django.test import AsyncClient, Client

from botapp.providers import storage
from botapp.providers.storage import LocalMediaStorage, media_storage

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(300_000)


@pytest.fixture
def local(tmp_path: Path, settings: Any) -> LocalMediaStorage:
    settings.MEDIA_STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://bot.example"
    chosen = media_storage()
    assert isinstance(chosen, LocalMediaStorage)
    return chosen


def _path(url: str) -> str:
    return urlsplit(url).path


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_a_valid_link_serves_the_file_with_its_content_type(local: LocalMediaStorage) -> None:
    local.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")
    url = local.signed_url(kind="image", key="jobs/1/0.png", expires_s=600)

    response = Client().get(_path(url))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(PNG))
    assert response["Cache-Control"].startswith("private, max-age=")
    assert _body(response) == PNG


def test_a_type_the_extension_does_not_say_is_stored_beside_the_file(
    local: LocalMediaStorage, tmp_path: Path
) -> None:
    types = tmp_path / "media" / ".types" / "images" / "jobs" / "3" / "0.png"
    local.put(kind="image", key="jobs/3/0.png", data=PNG, content_type="image/webp")
    url = local.signed_url(kind="image", key="jobs/3/0.png", expires_s=60)

    assert types.read_text() == "image/webp"
    assert Client().get(_path(url))["Content-Type"] == "image/webp"

    # Повтор с типом по расширению: файл типа больше не нужен и не должен его перебивать
    local.put(kind="image", key="jobs/3/0.png", data=PNG, content_type="image/png")

    assert not types.exists()
    assert Client().get(_path(url))["Content-Type"] == "image/png"


def test_a_video_is_served_as_video(local: LocalMediaStorage) -> None:
    local.put(kind="video", key="jobs/2/0.mp4", data=MP4, content_type="video/mp4")

    response = Client().get(_path(local.signed_url(kind="video", key="jobs/2/0.mp4", expires_s=60)))

    assert (response.status_code, response["Content-Type"]) == (200, "video/mp4")
    assert _body(response) == MP4


def test_under_asgi_the_file_streams_in_async_chunks(local: LocalMediaStorage) -> None:
    local.put(kind="video", key="jobs/2/0.mp4", data=MP4, content_type="video/mp4")
    path = _path(local.signed_url(kind="video", key="jobs/2/0.mp4", expires_s=60))

    async def fetch() -> tuple[Any, bytes]:
        response: Any = await AsyncClient().get(path)
        return response, b"".join([chunk async for chunk in response.streaming_content])

    response, body = async_to_sync(fetch)()

    assert response.is_async
    assert (response.status_code, response["Content-Type"], body) == (200, "video/mp4", MP4)


def test_a_tampered_link_is_forbidden(local: LocalMediaStorage) -> None:
    local.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")
    token = _path(local.signed_url(kind="image", key="jobs/1/0.png", expires_s=600)).rsplit("/", 1)[1]
    payload, _, signature = token.rpartition(":")
    forged_signature = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    other_key = signing.dumps({"k": "image", "p": "jobs/1/0.png", "x": 2**40}, salt="another-salt")

    for forged in [f"{payload}:{forged_signature}", other_key, "garbage", token[:-1]]:
        assert Client().get(f"/media/s/{forged}").status_code == 403


def test_an_expired_link_is_gone(local: LocalMediaStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    local.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")
    path = _path(local.signed_url(kind="image", key="jobs/1/0.png", expires_s=60))
    now = storage._clock()
    monkeypatch.setattr(storage, "_clock", lambda: now + 61)

    assert Client().get(path).status_code == 410


def test_a_deleted_file_is_not_found(local: LocalMediaStorage) -> None:
    local.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")
    path = _path(local.signed_url(kind="image", key="jobs/1/0.png", expires_s=60))
    local.delete(kind="image", keys=["jobs/1/0.png"])

    assert Client().get(path).status_code == 404


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("image", "../../secret.txt"),
        ("image", "../../../secret.txt"),
        ("image", "/etc/passwd"),
        ("image", "jobs/..%2F..%2Fsecret.txt"),
        ("../..", "secret.txt"),
        ("image", "jobs/1/../../../../secret.txt"),
    ],
)
def test_a_signed_traversal_key_is_not_served(
    local: LocalMediaStorage, tmp_path: Path, kind: str, key: str
) -> None:
    # Даже подписанный ключ (утёк SECRET_KEY, ошибка вызывающего) не выводит за корень медиа
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "media" / "images" / "jobs").mkdir(parents=True)
    token = signing.dumps({"k": kind, "p": key, "x": 2**40}, salt=storage._SIGN_SALT)

    response = Client().get(f"/media/s/{token}")

    assert response.status_code == 404
    assert b"top secret" not in b"".join(getattr(response, "streaming_content", [response.content]))


def test_only_get_and_head_are_allowed(local: LocalMediaStorage) -> None:
    local.put(kind="image", key="jobs/1/0.png", data=PNG, content_type="image/png")
    path = _path(local.signed_url(kind="image", key="jobs/1/0.png", expires_s=60))

    assert Client().post(path).status_code == 405
    assert Client().head(path).status_code == 200
