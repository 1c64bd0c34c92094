"""Сам локальный Gemini: отвечает как Google и запускается отдельным процессом."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from botapp.providers.gemini import GeminiProvider
from botapp.tests.support.fake_gemini import FakeGemini
from botapp.tests.support.processes import ROOT

MODEL = "gemini-3.1-flash-image-preview"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key="k") as server:
        yield server


def test_an_unknown_model_is_404_not_found(fake: FakeGemini) -> None:
    response = httpx.post(
        f"{fake.base_url}/v1beta/models/gemini-0:generateContent", json={}, headers={"x-goog-api-key": "k"}
    )

    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


def test_an_unsupported_ratio_is_400_invalid_argument(fake: FakeGemini) -> None:
    body = {
        "contents": [{"parts": [{"text": "кот"}]}],
        "generationConfig": {"imageConfig": {"aspectRatio": "7:1"}},
    }

    response = httpx.post(
        f"{fake.base_url}/v1beta/models/{MODEL}:generateContent", json=body, params={"key": "k"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_it_runs_as_a_separate_process_and_exposes_its_log() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "botapp.tests.support.fake_gemini", "--api-key", "sub-key"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        provider = GeminiProvider(api_key="sub-key", base_url=base_url)

        result = provider.generate_image(
            model_id=MODEL, prompt="кот", references=[], aspect_ratio="3:2", image_size="1K", timeout_s=10
        )
        log = httpx.get(f"{base_url}/_fake/requests").json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    assert (result.width, result.height) == (1248, 832)
    assert [(r["method"], r["path"]) for r in log] == [("POST", f"/v1beta/models/{MODEL}:generateContent")]
    assert log[0]["headers"]["x-goog-api-key"] == "sub-key"
