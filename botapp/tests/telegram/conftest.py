"""Фикстуры чат-тестов: сервер проекта в режиме песочницы и строгий контроль эмулятора."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from botapp.tests.sandbox.conftest import sandbox_mode_server, strict_sandbox  # noqa: F401 — общие фикстуры


@pytest.fixture(autouse=True)
def _no_emulator_violations(request: pytest.FixtureRequest) -> Iterator[None]:
    """Любой отказ эмулятора (кроме внедрённого тестом) — ошибка бота: тест падает."""
    yield
    if "sandbox_mode_server" not in request.fixturenames:
        return
    from botapp.sandbox import services

    violations = [
        (call.method, call.status, call.error)
        for call in services.sandbox_calls()
        if call.status >= 400 and not call.injected
    ]
    assert violations == [], f"the emulator rejected the bot's calls: {violations}"


@pytest.fixture(autouse=True)
def _billing_seeded(request: pytest.FixtureRequest) -> None:
    """Каталог и пакеты из миграции: транзакционные тесты чата стирают их между тестами."""
    if "sandbox_mode_server" in request.fixturenames:
        from botapp.tests.billing.factories import billing_seed

        request.getfixturevalue("transactional_db")
        billing_seed()
