"""Разбор parse_mode=HTML так же строго, как у Telegram: ошибка экранирования в боте видна локально.

MarkdownV2/Markdown не разбираются: текст остаётся как есть (длина считается по нему).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from botapp.sandbox.errors import ApiError, bad_request

_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_ENTITY = re.compile(r"&(#\d{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_ATTR = re.compile(r"""([a-zA-Z][\w-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    tag: str
    offset: int
    attrs: dict[str, str] = field(default_factory=dict)


def _error(text: str) -> ApiError:
    return bad_request(f"can't parse entities: {text}")


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _attrs(raw: str) -> dict[str, str]:
    return {
        m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
        for m in _ATTR.finditer(raw)
    }


def _entity(opened: _Open, end: int, inner_pre: bool) -> dict[str, Any] | None:
    kind = _TAGS[opened.tag]
    entity: dict[str, Any] = {"type": kind, "offset": opened.offset, "length": end - opened.offset}
    if kind == "text_link":
        href = opened.attrs.get("href", "")
        if not href:
            return None
        entity["url"] = href
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = opened.attrs.get("emoji-id", "")
    elif kind == "pre" and opened.attrs.get("language"):
        entity["language"] = opened.attrs["language"]
    elif kind == "blockquote" and "expandable" in opened.attrs:
        entity["type"] = "expandable_blockquote"
    elif kind == "code" and inner_pre:
        language = opened.attrs.get("class", "").removeprefix("language-")
        return {"type": "pre-language", "language": language} if language else None
    return entity if entity["length"] > 0 else None


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Текст без тегов + сущности (смещения в UTF-16, как в Bot API)."""
    out: list[str] = []
    length = 0
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "<":
            end = source.find(">", i)
            if end == -1:
                raise _error(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
            inner = source[i + 1 : end].strip()
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise _error(f'Unexpected end tag "{name}" at byte offset {_byte_offset(source, i)}')
                opened = stack.pop()
                if opened.tag != name:
                    raise _error(
                        f'Can\'t find end tag corresponding to start tag "{opened.tag}" '
                        f"at byte offset {_byte_offset(source, i)}"
                    )
                entity = _entity(opened, length, inner_pre=bool(stack) and stack[-1].tag == "pre")
                if entity and entity["type"] == "pre-language":
                    stack[-1].attrs["language"] = entity["language"]
                elif entity:
                    entities.append(entity)
            else:
                name, _, raw_attrs = inner.partition(" ")
                name = name.lower()
                attrs = _attrs(raw_attrs)
                if name not in _TAGS or (name == "span" and attrs.get("class") != "tg-spoiler"):
                    raise _error(f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}')
                stack.append(_Open(name, length, attrs))
            i = end + 1
            continue
        if char == "&":
            match = _ENTITY.match(source, i)
            if match:
                code = match.group(1)
                if code.startswith("#x"):
                    decoded = chr(int(code[2:], 16))
                elif code.startswith("#"):
                    decoded = chr(int(code[1:]))
                else:
                    decoded = _NAMED[code]
                out.append(decoded)
                length += utf16_len(decoded)
                i = match.end()
                continue
        out.append(char)
        length += utf16_len(char)
        i += 1
    if stack:
        raise _error(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def parse_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[Any]]:
    """Текст сообщения после разбора разметки и его сущности."""
    if entities:
        return text, entities
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode in ("markdown", "markdownv2"):
        return text, []
    raise bad_request(f"unsupported parse_mode {parse_mode}")


def command_entities(text: str) -> list[dict[str, Any]]:
    """Команда в начале текста пользователя: без сущности bot_command CommandHandler её не увидит."""
    match = _COMMAND.match(text)
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}] if match else []
