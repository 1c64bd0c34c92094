"""Проверка запросов по вендорной спецификации Bot API (telegram-bot-api.json).

Поля, их обязательность и типы берутся только из файла спецификации: при выходе
новой версии Bot API файл заменяют, код не трогают.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botapp.sandbox.errors import ApiError, bad_request

SPEC_PATH = Path(__file__).with_name("telegram-bot-api.json")
ARRAY_PREFIX = "Array of "
PRIMITIVES = frozenset({"Integer", "Float", "Boolean", "String", "InputFile"})
_INTEGER = re.compile(r"^-?\d{1,20}$")
_DISCRIMINATOR = re.compile(r"(?:must be|always) [\"“]?([a-z_]+)")
# Обязательные по спецификации, но пустая строка — осмысленное значение (не «поле пустое»)
EMPTY_ALLOWED = frozenset({("setWebhook", "url")})


@dataclass(frozen=True)
class Upload:
    """Файл из multipart-части запроса."""

    part: str
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


class Mismatch(Exception):
    """Значение не подходит под тип; текст — готовое описание ошибки без «Bad Request: »."""


@functools.cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@functools.cache
def _method_index() -> dict[str, str]:
    # Имена методов в Bot API регистронезависимы
    return {name.lower(): name for name in spec()["methods"]}


def canonical_method(name: str) -> str | None:
    return _method_index().get(name.lower())


def method_fields(method: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = spec()["methods"][method].get("fields", [])
    return fields


def method_returns(method: str) -> list[str]:
    returns: list[str] = spec()["methods"][method].get("returns", [])
    return returns


def type_spec(name: str) -> dict[str, Any]:
    types: dict[str, Any] = spec()["types"]
    return types[name]  # type: ignore[no-any-return]


@functools.cache
def discriminator(type_name: str) -> tuple[str, str] | None:
    """Поле-различитель подтипа и его значение: InputMediaPhoto → ("type", "photo")."""
    fields = type_spec(type_name).get("fields", [])
    ordered = sorted(fields, key=lambda f: f["name"] not in ("type", "status", "source"))
    for field in ordered:
        match = _DISCRIMINATOR.search(field.get("description", ""))
        if field["types"] == ["String"] and match:
            return field["name"], match.group(1)
    return None


def is_object_type(name: str) -> bool:
    return name not in PRIMITIVES and name in spec()["types"]


class Validator:
    """Приводит значения к типам спецификации; вложенные объекты проверяет рекурсивно."""

    def __init__(self, uploads: dict[str, Upload]) -> None:
        self.uploads = uploads

    def check_any(self, value: Any, types: list[str], path: str) -> Any:
        if len(types) > 1 and all(t.startswith(ARRAY_PREFIX) for t in types):
            # «Array of A или Array of B» — это массив, где каждый элемент A или B (альбом фото+видео)
            items = self._json(value, path)
            if not isinstance(items, list):
                raise Mismatch(f'field "{path}" must be of type Array')
            inner = [t.removeprefix(ARRAY_PREFIX) for t in types]
            return [self.check_any(item, inner, f"{path}[{i}]") for i, item in enumerate(items)]
        # Строка — последний вариант: иначе file_id «съел» бы attach://, а JSON остался бы строкой
        ordered = sorted(types, key=lambda t: t == "String")
        errors: list[Mismatch] = []
        for type_name in ordered:
            try:
                return self.check(value, type_name, path)
            except Mismatch as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        # Самая глубокая ошибка — от варианта, который подошёл по форме, но не по содержимому
        deepest = max(errors, key=lambda e: str(e).count(".") + str(e).count("["))
        if str(deepest).startswith(f'field "{path}" must be'):
            raise Mismatch(f'field "{path}" must be of type {" or ".join(types)}')
        raise deepest

    def check(self, value: Any, type_name: str, path: str) -> Any:
        if type_name.startswith(ARRAY_PREFIX):
            items = self._json(value, path)
            if not isinstance(items, list):
                raise Mismatch(f'field "{path}" must be of type {type_name}')
            inner = type_name.removeprefix(ARRAY_PREFIX)
            return [self.check(item, inner, f"{path}[{i}]") for i, item in enumerate(items)]
        if type_name in PRIMITIVES:
            return self._primitive(value, type_name, path)
        if is_object_type(type_name):
            return self._object(self._json(value, path), type_name, path)
        raise Mismatch(f'field "{path}" has unknown type {type_name}')

    def _json(self, value: Any, path: str) -> Any:
        """Сложные поля в form/multipart приходят JSON-строкой."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise Mismatch(f"can't parse {path} JSON object") from None

    def _primitive(self, value: Any, type_name: str, path: str) -> Any:
        wrong = Mismatch(f'field "{path}" must be of type {type_name}')
        if type_name == "String":
            if isinstance(value, str):
                return value
            # Telegram приводит числа к строке, а объекты и списки — нет
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            raise wrong
        if type_name == "Integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and _INTEGER.match(value.strip()):
                return int(value)
            raise wrong
        if type_name == "Float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    raise wrong from None
                if number == number and abs(number) != float("inf"):
                    return number
            raise wrong
        if type_name == "Boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise wrong
        # InputFile: multipart-часть под именем поля или ссылка attach://<часть>
        if isinstance(value, Upload):
            return value
        if isinstance(value, str) and value.startswith("attach://"):
            name = value.removeprefix("attach://")
            if name in self.uploads:
                return self.uploads[name]
            raise Mismatch(f'can\'t find attached file "{name}" for {path}')
        raise wrong

    def _object(self, value: Any, type_name: str, path: str) -> Any:
        described = type_spec(type_name)
        if "subtypes" in described:
            return self._subtype(value, type_name, described["subtypes"], path)
        if not isinstance(value, dict):
            raise Mismatch(f'field "{path}" must be of type {type_name}')
        key = discriminator(type_name) if "subtype_of" in described else None
        if key is not None and value.get(key[0]) is not None and value.get(key[0]) != key[1]:
            raise Mismatch(f'unsupported {path}.{key[0]} "{value.get(key[0])}"')
        result = dict(value)
        for field in described.get("fields", []):
            name = field["name"]
            item = value.get(name)
            if item is None:
                if field["required"]:
                    raise Mismatch(f"{path}.{name} is empty")
                continue
            result[name] = self.check_any(item, field["types"], f"{path}.{name}")
        return result

    def _subtype(self, value: Any, type_name: str, subtypes: list[str], path: str) -> Any:
        if not isinstance(value, dict):
            raise Mismatch(f'field "{path}" must be of type {type_name}')
        keys = [discriminator(sub) for sub in subtypes]
        if all(keys):
            field = keys[0][0]  # type: ignore[index]
            for sub, key in zip(subtypes, keys, strict=True):
                if key is not None and value.get(key[0]) == key[1]:
                    return self._object(value, sub, path)
            if value.get(field) is None:
                raise Mismatch(f"{path}.{field} is empty")
            raise Mismatch(f'unsupported {path}.{field} "{value.get(field)}"')
        return self.check_any(value, subtypes, path)


def validate(method: str, raw: dict[str, Any], uploads: dict[str, Upload]) -> dict[str, Any]:
    """Параметры метода, приведённые к типам; ApiError 400 при пропуске или неверном типе."""
    validator = Validator(uploads)
    result: dict[str, Any] = {}
    for field in method_fields(method):
        name, types = field["name"], field["types"]
        value = raw.get(name)
        if value is None and "InputFile" in types and name in uploads:
            value = uploads[name]
        if value == "" and (method, name) in EMPTY_ALLOWED:
            result[name] = ""
            continue
        if value is None or value == "":
            if field["required"]:
                raise bad_request(f"{name} is empty")
            continue
        try:
            result[name] = validator.check_any(value, types, name)
        except Mismatch as exc:
            raise bad_request(str(exc)) from None
    return result


def resolve_attachment(value: Any, uploads: dict[str, Upload], path: str) -> Upload | str:
    """media в InputMedia* описан как String, но может ссылаться на attach://."""
    if isinstance(value, Upload):
        return value
    if isinstance(value, str) and value.startswith("attach://"):
        name = value.removeprefix("attach://")
        if name not in uploads:
            raise bad_request(f'can\'t find attached file "{name}" for {path}')
        return uploads[name]
    if isinstance(value, str):
        return value
    raise ApiError(400, f'Bad Request: field "{path}" must be of type String')
