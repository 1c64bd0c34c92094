"""Экранирование и обрезка HTML по лимитам Telegram: тег и сущность не режутся пополам."""

from __future__ import annotations

import random
import re

import pytest

from botapp.telegram.formatting import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    _visible_text,
    escape,
    truncate_caption,
    truncate_html,
    visible_length,
)


def test_escape_neutralises_markup_from_users() -> None:
    assert escape('<b>hi</b> & "you"') == '&lt;b&gt;hi&lt;/b&gt; &amp; "you"'


def test_short_text_is_left_alone() -> None:
    text = "<b>Готово</b> &amp; всё"
    assert truncate_html(text) == text


def test_it_cuts_plain_text_to_the_limit_with_an_ellipsis() -> None:
    result = truncate_html("a" * 5000)
    assert visible_length(_visible_text(result)) == MESSAGE_LIMIT
    assert result.endswith("…")


def test_it_closes_open_tags_and_never_splits_an_entity() -> None:
    text = "<b>bold " + "x&amp;" * 600 + "</b>"
    result = truncate_caption(text)
    assert result.startswith("<b>bold ")
    assert result.endswith("…</b>")
    assert not re.search(r"&[a-z]*$", result.removesuffix("…</b>"))
    assert visible_length(_visible_text(result)) <= CAPTION_LIMIT


def test_it_counts_utf16_like_telegram() -> None:
    text = "😀" * 600  # каждый эмодзи — две единицы UTF-16
    result = truncate_caption(text)
    assert visible_length(_visible_text(result)) <= CAPTION_LIMIT
    assert result.count("😀") == (CAPTION_LIMIT - 1) // 2


@pytest.mark.parametrize("seed", range(25))
def test_random_markup_always_fits_and_stays_balanced(seed: int) -> None:
    rng = random.Random(seed)
    pieces = []
    for _ in range(rng.randint(50, 400)):
        kind = rng.choice(["text", "b", "i", "a", "entity", "code"])
        word = "".join(rng.choice("абвгдabcd😀 ") for _ in range(rng.randint(1, 30)))
        if kind == "text":
            pieces.append(escape(word))
        elif kind == "entity":
            pieces.append(rng.choice(["&amp;", "&lt;", "&gt;", "&#128512;"]))
        elif kind == "a":
            pieces.append(f'<a href="https://example.com/{seed}">{escape(word)}</a>')
        else:
            pieces.append(f"<{kind}>{escape(word)}</{kind}>")
    text = "".join(pieces)
    limit = rng.choice([CAPTION_LIMIT, MESSAGE_LIMIT, 100])
    result = truncate_html(text, limit)
    assert visible_length(_visible_text(result)) <= limit
    opened = re.findall(r"<(b|i|a|code)[ >]", result)
    closed = re.findall(r"</(b|i|a|code)>", result)
    assert sorted(opened) == sorted(closed)
