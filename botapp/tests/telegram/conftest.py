"""Фикстуры чат-тестов: сервер проекта в режиме песочницы (контроль эмулятора — корневой conftest)."""

from __future__ import annotations

import pytest

from botapp.tests.sandbox.conftest import (  # noqa: F401 — общие фикстуры
    sandbox_bot_api,
    sandbox_mode_server,
    strict_sandbox,
)


@pytest.fixture(autouse=True)
def _billing_seeded(request: pytest.FixtureRequest) -> None:
    """Каталог и пакеты из миграции: транзакционные тесты чата стирают их между тестами."""
    if "sandbox_mode_server" in request.fixturenames:
        from botapp.tests.billing.factories import billing_seed

        request.getfixturevalue("transactional_db")
        billing_seed()
