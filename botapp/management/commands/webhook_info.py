"""Показать getWebhookInfo (без секрета и токена)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand

from botapp.telegram import webhook_admin


class Command(BaseCommand):
    help = "Print Telegram getWebhookInfo as JSON"

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(asyncio.run(webhook_admin.webhook_info()), indent=2, ensure_ascii=False))
