"""Снять вебхук; очередь апдейтов сохраняется, если не попросить иначе."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand

from botapp.telegram import webhook_admin


class Command(BaseCommand):
    help = "Delete the Telegram webhook"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--drop-pending-updates", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(webhook_admin.webhook_delete(drop_pending_updates=options["drop_pending_updates"]))
        self.stdout.write("webhook deleted")
