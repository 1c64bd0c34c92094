"""Список команд публикуется один раз на набор описаний — на всех языках, а не только английском."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from django.utils import translation
from telegram import BotCommand

from botapp.telegram import commands


class _Bot:
    """Записывает setMyCommands: здесь важна только логика «один раз», а не HTTP."""

    def __init__(self) -> None:
        # Свой id бота в ключе кэша: прогоны не мешают друг другу (cache.clear стёр бы чужие ключи)
        self.token = f"{time.monotonic_ns()}:test"
        self.published: list[str | None] = []

    async def set_my_commands(self, items: list[BotCommand], language_code: str | None = None) -> None:
        self.published.append(language_code)


def test_a_changed_russian_description_is_published_again(monkeypatch: pytest.MonkeyPatch) -> None:
    bot = _Bot()
    asyncio.run(commands.publish_commands_once(bot))  # type: ignore[arg-type]
    asyncio.run(commands.publish_commands_once(bot))  # type: ignore[arg-type]
    assert bot.published == ["ru", "en", None]  # второй раз — ничего
    original = commands.command_descriptions

    def edited() -> list[Any]:
        items = original()
        if translation.get_language() == "ru":
            items[0] = BotCommand(items[0].command, "Начать заново (новый текст)")
        return items

    monkeypatch.setattr(commands, "command_descriptions", edited)
    asyncio.run(commands.publish_commands_once(bot))  # type: ignore[arg-type]
    assert bot.published == ["ru", "en", None, "ru", "en", None]
