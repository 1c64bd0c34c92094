"""Выдать сотруднику устройство TOTP: печатает otpauth-ссылку и QR в терминал (первый вход при 2FA)."""

from __future__ import annotations

import io
from typing import Any

import segno
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Create a TOTP device for a staff member and print its otpauth URL and QR code"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator")
        parser.add_argument(
            "--replace", action="store_true", help="delete the member's existing TOTP devices"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"], is_staff=True).first()
        if user is None:
            raise CommandError(f"no staff member named {options['username']!r}")
        if options["replace"]:
            TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name=options["name"], confirmed=True)
        self.stdout.write(device.config_url)
        buffer = io.StringIO()
        segno.make(device.config_url).terminal(out=buffer, compact=True)
        self.stdout.write(buffer.getvalue())
