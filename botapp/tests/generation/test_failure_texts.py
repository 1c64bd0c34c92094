"""Каждая категория ошибки, которую выдают провайдеры, хранилище и конвейер, объяснена пользователю."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import translation

from botapp.generation.delivery import failure_text
from botapp.providers import gemini, veo_rest

ROOT = Path(__file__).resolve().parents[2]
CATEGORY = re.compile(r'category\s*=\s*"([a-z_]+)"')
# Ошибки программиста (ключ или тип медиа) и отмена (у неё своё сообщение) — не причина для пользователя
NOT_A_REASON = {"invalid_key", "invalid_kind", "invalid_content_type", "cancelled"}


def _emitted() -> set[str]:
    """Категории из кода: литералы category="…" и таблицы кодов, а не список, который легко забыть."""
    found: set[str] = set()
    for folder in ("providers", "generation"):
        for path in (ROOT / folder).rglob("*.py"):
            if "payments" not in path.parts:
                found |= set(CATEGORY.findall(path.read_text(encoding="utf-8")))
    found |= set(gemini._PERMANENT_RPC.values()) | {veo_rest.UNAVAILABLE}
    return found - NOT_A_REASON


def test_the_scan_sees_the_categories_it_must() -> None:
    categories = _emitted()
    must = {"safety", "rate_limited", "wrong_aspect_ratio", "video_failed", "storage_unavailable"}
    assert must <= categories


@pytest.mark.parametrize("language", ["ru", "en"])
def test_every_emitted_category_has_a_reason(language: str) -> None:
    with translation.override(language):
        unexpected = failure_text("no-such-category")
        missing = sorted(c for c in _emitted() if failure_text(c) == unexpected)
    assert missing == []
