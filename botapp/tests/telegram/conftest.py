"""Фикстуры чат-тестов: сервер проекта в режиме песочницы (контроль эмулятора — корневой conftest)."""

from __future__ import annotations

import pytest

from botapp.tests.sandbox.conftest import (  # noqa: F401 — общие фикстуры
    sandbox_bot_api,
    sandbox_mode_server,
    strict_sandbox,
)


@pytest.fixture(autouse=True)
def _server_sees_test_data(request: pytest.FixtureRequest) -> None:
    """Сервер песочницы — другой процесс: данные теста должны быть закоммичены (транзакционная БД)."""
    if "sandbox_mode_server" in request.fixturenames:
        request.getfixturevalue("transactional_db")
