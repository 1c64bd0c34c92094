"""Production-настройки отказываются стартовать с небезопасными значениями, называя переменную."""

from __future__ import annotations

import subprocess
import sys

import pytest

from botapp.tests.support.processes import ROOT, base_env

# Реалистичная production-конфигурация (значения вымышленные)
SAFE = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k" * 20 + "-realistic-production-secret-key-" + "z" * 20,  # pragma: allowlist secret
    "DEBUG": "false",
    "ALLOWED_HOSTS": "bot.example.com",
    "PUBLIC_BASE_URL": "https://bot.example.com",
    "DATABASE_URL": "postgres://app@db.internal:5432/app",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "SUPABASE_URL": "https://project.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY": "service-role-key-placeholder",  # pragma: allowlist secret
    "TELEGRAM_BOT_TOKEN": "123456789:TESTProductionLikeTokenPlaceholder_abcd",  # pragma: allowlist secret
    "TG_WEBHOOK_SECRET": "webhook-secret-placeholder",  # pragma: allowlist secret
    "GEMINI_API_KEY": "gemini-key-placeholder",  # pragma: allowlist secret
    "METRICS_TOKEN": "metrics-token-placeholder",  # pragma: allowlist secret
}


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base_env(**env),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"DEBUG": "true"}, "DEBUG"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),  # pragma: allowlist secret
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"PUBLIC_BASE_URL": "http://bot.example.com"}, "PUBLIC_BASE_URL"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"SUPABASE_URL": ""}, "SUPABASE_URL"),
        ({"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_SANDBOX": "true"}, "TELEGRAM_SANDBOX"),
        ({"GEMINI_API_KEY": ""}, "GEMINI_API_KEY"),
        ({"GEMINI_OFFLINE": "true"}, "GEMINI_OFFLINE"),
        ({"TG_WEBHOOK_SECRET": ""}, "TG_WEBHOOK_SECRET"),
        ({"METRICS_TOKEN": ""}, "METRICS_TOKEN"),
        ({"USE_VERTEX_AI": "true", "GEMINI_API_KEY": ""}, "GOOGLE_CLOUD_PROJECT"),
        ({"LAVA_ENABLED": "true", "LAVA_WEBHOOK_API_KEY": "k" * 20}, "LAVA_API_KEY"),
        ({"LAVA_ENABLED": "true", "LAVA_API_KEY": "k" * 20}, "LAVA_WEBHOOK_API_KEY"),
    ],
)
def test_production_refuses_an_unsafe_setting(change: dict[str, str], named: str) -> None:
    result = _manage({**SAFE, **change}, "check")
    assert result.returncode != 0
    assert named in result.stderr


def test_production_names_every_offending_variable_at_once() -> None:
    result = _manage({"DJANGO_SETTINGS_MODULE": "config.settings.production"}, "check")
    assert result.returncode != 0
    for name in (
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "TELEGRAM_BOT_TOKEN",
        "GEMINI_API_KEY",
        "METRICS_TOKEN",
    ):
        assert name in result.stderr


def test_check_deploy_is_clean_with_realistic_values() -> None:
    result = _manage(SAFE, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000/sandbox/api"),
        ({"TELEGRAM_SANDBOX_API_URL": "http://web:8000/sandbox/api/"}, "http://web:8000/sandbox/api"),
        # С настоящим токеном песочницы нет: переменная compose для worker и beat не уводит их от Telegram
        (
            {
                "TELEGRAM_SANDBOX_API_URL": "http://web:8000/sandbox/api",
                "TELEGRAM_BOT_TOKEN": SAFE["TELEGRAM_BOT_TOKEN"],
                "TG_WEBHOOK_SECRET": SAFE["TG_WEBHOOK_SECRET"],
            },
            "https://api.telegram.org",
        ),
    ],
)
def test_the_bot_api_address_follows_the_sandbox_variable_only_in_sandbox(
    env: dict[str, str], expected: str
) -> None:
    shown = _manage(
        {"DJANGO_SETTINGS_MODULE": "config.settings.base", "PORT": "8000", "TELEGRAM_BOT_TOKEN": "", **env},
        "shell", "-c", "from django.conf import settings; print(settings.TELEGRAM_API_BASE_URL)",
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1] == expected
