"""Временная заглушка до модуля lava.top (его пишет параллельная задача)."""

from __future__ import annotations

from telegram import Update

from botapp.telegram.application import BotContext


async def lava_choose(update: Update, context: BotContext) -> None:
    raise NotImplementedError


async def lava_email_message(update: Update, context: BotContext) -> None:
    raise NotImplementedError
