"""Единственный помощник текстов Telegram: экранирование, безопасная обрезка, числа со словами.

Telegram считает длину текста после разбора разметки (в UTF-16), поэтому обрезаем
по видимым символам и никогда не режем тег или сущность (&amp;) пополам.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

from django.utils.translation import ngettext

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
ELLIPSIS = "…"


def tokens(count: int) -> str:
    """«1 токен», «3 токена», «20 токенов» — форма слова по правилам языка (ngettext), не «токенов: 1»."""
    return ngettext("{count} token", "{count} tokens", count).format(count=count)


def from_tokens(count: int) -> str:
    """«от 21 токена», «от 14 токенов»: после «от» — родительный падеж, свои формы."""
    return ngettext("from {count} token", "from {count} tokens", count).format(count=count)


def images(count: int) -> str:
    return ngettext("{count} image", "{count} images", count).format(count=count)


def videos(count: int) -> str:
    return ngettext("{count} video", "{count} videos", count).format(count=count)


def escape(text: str) -> str:
    """Пользовательский текст → безопасный для parse_mode=HTML."""
    return html.escape(text, quote=False)


def visible_length(text: str) -> int:
    """Длина видимого текста в единицах UTF-16, как считает Telegram."""
    return len(text.encode("utf-16-le")) // 2


class _Truncator(HTMLParser):
    def __init__(self, budget: int) -> None:
        super().__init__(convert_charrefs=False)
        self.budget = budget
        self.out: list[str] = []
        self.open_tags: list[str] = []
        self.cut = False

    def _take(self, visible: str, raw: str) -> None:
        if self.cut:
            return
        size = visible_length(visible)
        if size <= self.budget:
            self.out.append(raw)
            self.budget -= size
            return
        # Не влезло целиком: берём сколько можно из обычного текста, сущность — целиком или никак
        if raw == escape(visible) and raw == visible:
            kept = ""
            for char in visible:
                if visible_length(kept + char) > self.budget:
                    break
                kept += char
            self.out.append(kept)
        self.cut = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut:
            return
        self.out.append(self.get_starttag_text() or f"<{tag}>")
        self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.cut:
            return
        self.out.append(f"</{tag}>")
        if tag in self.open_tags:
            del self.open_tags[len(self.open_tags) - 1 - self.open_tags[::-1].index(tag)]

    def handle_data(self, data: str) -> None:
        self._take(data, data)

    def handle_entityref(self, name: str) -> None:
        self._take(html.unescape(f"&{name};"), f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._take(html.unescape(f"&#{name};"), f"&#{name};")


def truncate_html(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Укоротить HTML до limit видимых символов, закрыв открытые теги и добавив «…»."""
    plain = _visible_text(text)
    if visible_length(plain) <= limit:
        return text
    parser = _Truncator(limit - visible_length(ELLIPSIS))
    parser.feed(text)
    parser.close()
    closing = "".join(f"</{tag}>" for tag in reversed(parser.open_tags))
    return "".join(parser.out) + ELLIPSIS + closing


def _visible_text(text: str) -> str:
    class Collector(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    collector = Collector()
    collector.feed(text)
    collector.close()
    return "".join(collector.parts)


def truncate_caption(text: str) -> str:
    return truncate_html(text, CAPTION_LIMIT)
