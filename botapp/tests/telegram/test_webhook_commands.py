"""set_webhook / webhook_info / delete_webhook через настоящий PTB к подделке Bot API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from botapp.tests.support.fakes import FakeBotApi, fake_bot_api

TOKEN = "555000222:TESTWebhookCommandsToken_abcdefghijkl"  # pragma: allowlist secret
SECRET = "set-webhook-secret"  # pragma: allowlist secret


def responder(method: str, params: dict[str, Any]) -> Any:
    if method == "getMe":
        return {"id": 555000222, "is_bot": True, "first_name": "Nano", "username": "nano_bot"}
    if method == "getWebhookInfo":
        return {"url": "https://bot.example.com/telegram/webhook/", "has_custom_certificate": False,
                "pending_update_count": 2, "max_connections": 40, "allowed_updates": ["message"]}  # fmt: skip
    return True


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with fake_bot_api(responder) as (base, fake), override_settings(
        TELEGRAM_BOT_TOKEN=TOKEN, TG_WEBHOOK_SECRET=SECRET, TELEGRAM_API_BASE_URL=base,
        PUBLIC_BASE_URL="https://bot.example.com",
    ):  # fmt: skip
        yield fake


def _params(api: FakeBotApi, method: str) -> dict[str, Any]:
    return next(params for name, params in api.calls if name == method)


def test_set_webhook_registers_the_url_secret_and_handled_update_types(api: FakeBotApi) -> None:
    out = StringIO()
    call_command("set_webhook", "--max-connections", "20", stdout=out)
    params = _params(api, "setWebhook")
    assert params["url"] == "https://bot.example.com/telegram/webhook/"
    assert params["secret_token"] == SECRET
    assert params["max_connections"] == "20"
    assert set(json.loads(params["allowed_updates"])) == {
        "message", "callback_query", "pre_checkout_query", "my_chat_member",
    }  # fmt: skip
    assert params.get("drop_pending_updates") in (None, "false")
    assert SECRET not in out.getvalue()


def test_set_webhook_drops_pending_updates_only_when_asked(api: FakeBotApi) -> None:
    call_command("set_webhook", "--drop-pending-updates", stdout=StringIO())
    assert _params(api, "setWebhook")["drop_pending_updates"] == "true"


@pytest.mark.parametrize("base", ["http://bot.example.com", "https://bot.example.com:8000"])
def test_set_webhook_refuses_http_or_a_port_telegram_does_not_allow(api: FakeBotApi, base: str) -> None:
    with override_settings(PUBLIC_BASE_URL=base), pytest.raises(CommandError):
        call_command("set_webhook", stdout=StringIO())
    assert "setWebhook" not in api.methods()
    with override_settings(PUBLIC_BASE_URL=base):
        call_command("set_webhook", "--allow-insecure", stdout=StringIO())
    assert _params(api, "setWebhook")["url"] == f"{base}/telegram/webhook/"


def test_webhook_info_and_delete(api: FakeBotApi) -> None:
    out = StringIO()
    call_command("webhook_info", stdout=out)
    assert json.loads(out.getvalue())["pending_update_count"] == 2
    call_command("delete_webhook", stdout=StringIO())
    assert "deleteWebhook" in api.methods()
    assert _params(api, "deleteWebhook").get("drop_pending_updates") in (None, "false")


def test_publish_commands_sets_ru_en_and_default_lists(api: FakeBotApi) -> None:
    call_command("publish_commands", stdout=StringIO())
    calls = [params for name, params in api.calls if name == "setMyCommands"]
    assert [params.get("language_code") for params in calls] == ["ru", "en", None]
    ru, en, default = (json.loads(params["commands"]) for params in calls)
    assert [c["command"] for c in ru] == [c["command"] for c in en]
    assert {c["command"] for c in en} >= {"start", "help", "balance", "topup", "delete_me", "paysupport"}
    assert next(c for c in ru if c["command"] == "help")["description"] == "Как пользоваться ботом"
    assert next(c for c in en if c["command"] == "help")["description"] == "How to use the bot"
    assert default == ru
