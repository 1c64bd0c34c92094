"""Зарегистрировать вебхук: PUBLIC_BASE_URL + /telegram/webhook/ с секретом."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from botapp.telegram import webhook_admin


class Command(BaseCommand):
    help = "Register the Telegram webhook (never drops pending updates unless --drop-pending-updates)"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--max-connections", type=int, default=40, choices=range(1, 101), metavar="1..100"
        )
        parser.add_argument("--drop-pending-updates", action="store_true")
        parser.add_argument("--allow-insecure", action="store_true", help="allow http and any port (tests)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            url = webhook_admin.webhook_url(allow_insecure=options["allow_insecure"])
            ok = asyncio.run(
                webhook_admin.webhook_set(
                    url=url,
                    max_connections=options["max_connections"],
                    drop_pending_updates=options["drop_pending_updates"],
                )
            )
        except webhook_admin.WebhookConfigError as exc:
            raise CommandError(str(exc)) from exc
        if not ok:
            raise CommandError("Telegram refused setWebhook")
        self.stdout.write(f"webhook set: {url}")
