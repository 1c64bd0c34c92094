"""Ошибка Bot API в том виде, в каком её отдаёт Telegram."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """{"ok":false,"error_code":code,"description":…,"parameters":…}."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters or {}
        # Ошибка заказана тестом (sandbox_inject_failure), а не вызвана запросом
        self.injected = False

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str, **parameters: Any) -> ApiError:
    return ApiError(400, f"Bad Request: {text}", parameters or None)


NOT_FOUND = ApiError(404, "Not Found")
UNAUTHORIZED = ApiError(401, "Unauthorized")
