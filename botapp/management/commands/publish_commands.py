"""setMyCommands для ru, en и области по умолчанию (при старте в режиме вебхука)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from telegram import Bot

from botapp.telegram.commands import publish_commands


class Command(BaseCommand):
    help = "Publish the bot's command list with setMyCommands (ru, en, default scope)"

    def handle(self, *args: Any, **options: Any) -> None:
        base = settings.TELEGRAM_API_BASE_URL

        async def go() -> None:
            async with Bot(settings.TELEGRAM_BOT_TOKEN, base_url=f"{base}/bot") as bot:
                await publish_commands(bot)

        asyncio.run(go())
        self.stdout.write("commands published")
