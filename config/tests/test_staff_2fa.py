"""Production-настройки всегда требуют TOTP от персонала, даже если окружение говорит обратное."""

from __future__ import annotations

import subprocess
import sys

from botapp.tests.support.processes import ROOT, base_env
from config.tests.test_production_settings import SAFE

PROBE = (
    "import django; django.setup()\n"
    "from django.conf import settings\n"
    "import config.urls\n"
    "from django.contrib import admin\n"
    "print(settings.STAFF_2FA_REQUIRED, admin.site.__class__.__name__)\n"
)


def _probe(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=base_env(**env),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_forces_2fa_even_when_the_env_turns_it_off() -> None:
    assert _probe({**SAFE, "STAFF_2FA_REQUIRED": "false"}) == "True OTPAdminSite"


def test_the_env_switch_works_outside_production() -> None:
    # Контроль: без production тот же флаг действительно выключает 2FA — значит, выше сработало принуждение
    assert (
        _probe({"DJANGO_SETTINGS_MODULE": "config.settings.base", "STAFF_2FA_REQUIRED": "false"})
        == "False AdminSite"
    )
