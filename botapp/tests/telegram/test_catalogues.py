"""Каталоги переводов полны: ни одной пустой строки, в английском — ни одной кириллицы."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def parse_po(path: Path) -> dict[str, str]:
    """msgid → msgstr; строки-продолжения склеиваются, заголовок пропускается.

    У записи с формами множественного числа (msgid_plural, msgstr[N]) msgstr — формы через «|»,
    а если хоть одна форма пуста — пустая строка: непереведённой считается вся запись.
    """
    entries: dict[str, str] = {}
    current: dict[str, str] = {}
    field = ""

    def flush() -> None:
        if "msgid" not in current:
            return
        forms = [value for key, value in current.items() if key.startswith("msgstr[")]
        if forms:
            entries[current["msgid"]] = "|".join(forms) if all(forms) else ""
        else:
            entries[current["msgid"]] = current.get("msgstr", "")

    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith(("msgid ", "msgid_plural ", "msgstr ", "msgstr[")):
            field, _, value = line.partition(" ")
            if field == "msgid" and "msgid" in current:
                flush()
                current = {}
            current[field] = ast.literal_eval(value)
        elif line.startswith('"') and field:
            current[field] += ast.literal_eval(line)
    flush()
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


@pytest.mark.parametrize(
    ("language", "count", "expected"),
    [
        ("ru", 1, ("1 токен", "от 1 токена", "1 изображение")),
        ("ru", 3, ("3 токена", "от 3 токенов", "3 изображения")),
        ("ru", 14, ("14 токенов", "от 14 токенов", "14 изображений")),
        ("ru", 21, ("21 токен", "от 21 токена", "21 изображение")),
        ("ru", 0, ("0 токенов", "от 0 токенов", "0 изображений")),
        ("en", 1, ("1 token", "from 1 token", "1 image")),
        ("en", 21, ("21 tokens", "from 21 tokens", "21 images")),
    ],
)
def test_numbers_take_the_plural_form_of_the_language(
    language: str, count: int, expected: tuple[str, str, str]
) -> None:
    """«21 токен», а не «токенов: 21»: формы из каталога по правилу Plural-Forms языка."""
    from django.utils import translation

    from botapp.telegram.formatting import from_tokens, images, tokens

    with translation.override(language):
        assert (tokens(count), from_tokens(count), images(count)) == expected


PLACEHOLDER = re.compile(r"\{\w*\}")


@pytest.mark.parametrize("language", ["ru", "en"])
def test_every_translation_keeps_the_placeholders_of_its_msgid(language: str) -> None:
    """Потерянный или переименованный {tokens} в переводе — KeyError или пропавшее число у пользователя."""
    entries = parse_po(LOCALE / language / "LC_MESSAGES" / "django.po")
    broken = [
        msgid
        for msgid, msgstr in entries.items()
        if set(PLACEHOLDER.findall(msgstr)) != set(PLACEHOLDER.findall(msgid))
    ]
    assert broken == []


@pytest.mark.parametrize(
    ("msgid_start", "wording"),
    [
        ("Terms of use:", "Токены за неудачную генерацию возвращаются автоматически."),
        ("How it works:", "отправьте фото, а в подписи — что в нём изменить."),
        ("Still owed: {tokens}.", "Осталось погасить: {tokens}."),
        ("Older ▶️", "Раньше ▶️"),
    ],
)
def test_the_russian_wording_is_plain(msgid_start: str, wording: str) -> None:
    """Формулировки после прохода по чату: понятно, что возвращается, что изменить и сколько осталось."""
    entries = parse_po(LOCALE / "ru" / "LC_MESSAGES" / "django.po")
    [msgstr] = [msgstr for msgid, msgstr in entries.items() if msgid.startswith(msgid_start)]
    assert wording in msgstr
