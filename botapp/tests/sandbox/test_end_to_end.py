"""Полный круг в песочнице: пользователь → вебхук бота → бот отвечает через эмулятор того же сервера."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from botapp.sandbox import services
from botapp.tests.sandbox.conftest import LiveSandbox, new_chat_id, png

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_start_from_a_fake_user_gets_an_answer_from_the_bot(sandbox_mode_server: str) -> None:
    user = services.sandbox_user_get_or_create(first_name="Петя", language_code="ru")
    update = services.sandbox_user_send_text(chat_id=user.chat_id, text="/start")

    status = services.sandbox_update_deliver(update_id=update["update_id"], base_url=sandbox_mode_server)

    assert status == 200
    replies = [c for c in services.sandbox_calls(chat_id=user.chat_id) if c.method.startswith("send")]
    assert replies, [(c.method, c.status, c.error) for c in services.sandbox_calls()]
    assert all(c.status == 200 for c in replies), [(c.method, c.error) for c in replies]
    bot_messages = services.sandbox_messages(chat_id=user.chat_id, direction="bot")
    assert bot_messages


def test_an_upload_over_one_megabyte_reaches_the_emulator(live_sandbox: LiveSandbox) -> None:
    document = png(100, 100, padding=3 * 1024 * 1024)

    async def scenario() -> Any:
        async with live_sandbox.bot() as bot:
            return await bot.send_document(new_chat_id(), document, filename="original.png")

    message = asyncio.run(scenario())

    assert message.document.file_size == len(document)
