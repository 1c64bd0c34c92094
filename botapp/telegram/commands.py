"""Команды бота (ARCHITECTURE §7) и их публикация через setMyCommands."""

from __future__ import annotations

import hashlib
import json

from django.core.cache import cache
from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Bot, BotCommand

COMMANDS = (
    "start", "help", "balance", "topup", "gallery", "settings", "promo", "invite",
    "support", "paysupport", "cancel", "terms", "privacy", "delete_me",
)  # fmt: skip


def command_descriptions() -> list[BotCommand]:
    """Описания на активном языке; строки — в каталогах переводов."""
    descriptions = {
        "start": _("Start the bot and show the menu"),
        "help": _("How to use the bot"),
        "balance": _("Your token balance"),
        "topup": _("Top up with Telegram Stars"),
        "gallery": _("My works"),  # как пункт меню «🖼 My works» (ARCHITECTURE §7)
        "settings": _("Language and preferences"),
        "promo": _("Redeem a promo code"),
        "invite": _("Invite friends"),
        "support": _("Write to support"),
        "paysupport": _("Help with a payment"),
        "cancel": _("Cancel the current step"),
        "terms": _("Terms of use"),
        "privacy": _("Privacy policy"),
        "delete_me": _("Delete my data"),
    }
    return [BotCommand(name, descriptions[name]) for name in COMMANDS]


async def publish_commands(bot: Bot) -> None:
    """Для ru, en и области по умолчанию (русский — язык по умолчанию)."""
    for language_code in ("ru", "en", None):
        with translation.override(language_code or "ru"):
            commands = command_descriptions()
        await bot.set_my_commands(commands, language_code=language_code)


async def publish_commands_once(bot: Bot) -> None:
    """Один раз на набор команд: несколько веб-процессов не повторяют одно и то же.

    Отпечаток — по описаниям на всех языках: правка русского текста тоже публикуется сразу.
    """
    published = []
    for language_code in ("ru", "en"):
        with translation.override(language_code):
            published.append([c.to_dict() for c in command_descriptions()])
    digest = hashlib.sha256(json.dumps(published, ensure_ascii=False).encode()).hexdigest()
    key = f"telegram:commands:{bot.token.split(':')[0]}:{digest[:16]}"
    if await cache.aadd(key, 1, timeout=24 * 3600):
        try:
            await publish_commands(bot)
        except Exception:
            await cache.adelete(key)
            raise
