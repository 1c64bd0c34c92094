"""Сверка денег: инварианты журнала (сумма ноль, кэш = журнал, нет минусов, холд урегулирован один раз)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from botapp.billing import reconcile


class Command(BaseCommand):
    help = "Check the money invariants in plain SQL; exit non-zero on any mismatch"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--alert", action="store_true", help="on mismatch also record an error and alert")

    def handle(self, *args: Any, **options: Any) -> None:
        report = reconcile.reconcile_and_alert() if options["alert"] else reconcile.reconcile_ledger()
        if not report.ok:
            raise CommandError(report.summary())
        self.stdout.write(report.summary())
