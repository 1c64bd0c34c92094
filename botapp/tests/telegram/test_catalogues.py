"""Каталоги переводов полны: ни одной пустой строки, в английском — ни одной кириллицы."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def parse_po(path: Path) -> dict[str, str]:
    """msgid → msgstr; строки-продолжения склеиваются, заголовок пропускается."""
    entries: dict[str, str] = {}
    current: dict[str, str] = {}
    field = ""
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith(("msgid ", "msgstr ")):
            field, _, value = line.partition(" ")
            if field == "msgid" and "msgid" in current:
                entries[current["msgid"]] = current.get("msgstr", "")
                current = {}
            current[field] = ast.literal_eval(value)
        elif line.startswith('"') and field:
            current[field] += ast.literal_eval(line)
    if "msgid" in current:
        entries[current["msgid"]] = current.get("msgstr", "")
    entries.pop("", None)
    return entries


@pytest.mark.parametrize("language", ["ru", "en"])
def test_no_message_is_left_untranslated(language: str) -> None:
    entries = parse_po(LOCALE / language / "LC_MESSAGES" / "django.po")
    assert len(entries) > 30
    assert [msgid for msgid, msgstr in entries.items() if not msgstr] == []


def test_the_english_catalogue_has_no_cyrillic() -> None:
    path = LOCALE / "en" / "LC_MESSAGES" / "django.po"
    assert not CYRILLIC.search(path.read_text())


def test_the_russian_catalogue_translates_the_menu() -> None:
    entries = parse_po(LOCALE / "ru" / "LC_MESSAGES" / "django.po")
    assert entries["⭐ Top up"] == "⭐ Пополнить"
    assert entries["⚙️ Settings"] == "⚙️ Настройки"
