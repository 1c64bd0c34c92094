"""Каждый URL панели, админки и /metrics закрыт для не-персонала: аноним и вошедший пользователь без is_staff.

URL берутся из самой карты (get_resolver обходится рекурсивно), так что новый раздел
попадает под проверку без правки теста. Публичные адреса — явный список с причинами.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

pytestmark = pytest.mark.django_db

# Префикс пути → почему он открыт без входа персонала
PUBLIC = {
    "/telegram/webhook/": "вебхук Telegram: защищён секретом X-Telegram-Bot-Api-Secret-Token",
    "/api/health": "проверки здоровья для платформы и мониторинга, без секретов",
    "/payments/lava/webhook/": "вебхук lava.top: защищён своим ключом или Basic",
    "/media/s/": "подписанные ссылки на медиа: доступ по подписи",
    "/sandbox/": "песочница: только при TELEGRAM_SANDBOX (никогда в production)",
    "/dashboard/login/": "форма входа персонала должна открываться без входа",
    "/admin/login/": "форма входа админки должна открываться без входа",
}
PROTECTED = ("/dashboard/", "/admin/", "/metrics")
# Не-персонал: на вход или отказ, но никогда 200
ALLOWED = {302, 401, 403, 404, 405}

_SAMPLES = {"int": "1", "str": "x", "slug": "x", "path": "1", "uuid": str(uuid.UUID(int=1))}
_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<\w+>((?:[^()]|\([^()]*\))*)\)")


def _route_sample(route: str) -> str:
    return _ROUTE_PARAM.sub(lambda m: _SAMPLES[m["converter"] or "str"], route)


def _group_sample(body: str) -> str:
    if re.fullmatch(r"[\w|]+", body):
        return body.split("|")[0]  # перечисление: первое значение
    return "x"


def _regex_sample(regex: str) -> str:
    text = _REGEX_GROUP.sub(lambda m: _group_sample(m[1]), regex.removeprefix("^").removesuffix("$"))
    return text.replace("/?", "/")


@dataclass(frozen=True)
class Url:
    path: str
    pattern: str
    name: str | None


def _walk(resolver: URLResolver, prefix: str = "", shown: str = "") -> Iterator[Url]:
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            sample = _route_sample(str(pattern))
        else:
            assert isinstance(pattern, RegexPattern)
            sample = _regex_sample(str(pattern))
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + sample, shown + str(pattern))
        else:
            assert isinstance(entry, URLPattern)
            yield Url("/" + prefix + sample, shown + str(pattern), entry.name)


ALL = list(_walk(get_resolver()))


def _public_reason(path: str) -> str | None:
    return next((reason for prefix, reason in PUBLIC.items() if path.startswith(prefix)), None)


def test_every_pattern_gets_a_sample_url_that_resolves_back_to_it() -> None:
    for url in ALL:
        match = resolve(url.path)
        assert match.route.replace("^", "").replace("$", "") == url.pattern.replace("^", "").replace(
            "$", ""
        ), url


def test_every_url_is_either_protected_or_listed_as_public_with_a_reason() -> None:
    for url in ALL:
        assert url.path.startswith(PROTECTED) or _public_reason(url.path), f"{url.path} не классифицирован"


def test_every_public_exception_still_exists() -> None:
    for prefix in PUBLIC:
        if prefix == "/sandbox/" and not any(url.path.startswith(prefix) for url in ALL):
            continue  # песочница подключается только без токена бота
        assert any(url.path.startswith(prefix) for url in ALL), f"исключение {prefix} устарело"


def test_the_map_includes_the_dashboard_the_admin_and_metrics() -> None:
    paths = {url.path for url in ALL}
    assert "/metrics" in paths
    assert "/dashboard/errors/1/status/" in paths
    assert any(path.startswith("/admin/botapp/") for path in paths)


def _clients() -> dict[str, Client]:
    user = User.objects.create_user("visitor", password="pw")  # pragma: allowlist secret
    logged_in = Client()
    logged_in.force_login(user)
    return {"anonymous": Client(), "non-staff": logged_in}


def _closed(response: object, path: str) -> bool:
    status = getattr(response, "status_code", 0)
    if status not in ALLOWED:
        return False
    if status == 302:
        # На вход — или на другой закрытый адрес (выход из админки ведёт на её главную), он проверен тут же
        location = str(response["Location"]).split("?", 1)[0]  # type: ignore[index]
        return "/login/" in location or (location.startswith(PROTECTED) and not _public_reason(location))
    return True


@pytest.mark.parametrize("url", [u for u in ALL if not _public_reason(u.path)], ids=lambda u: u.path)
def test_non_staff_never_get_a_protected_page(url: Url) -> None:
    for who, client in _clients().items():
        for method in ("get", "post"):
            response = getattr(client, method)(url.path)
            assert _closed(response, url.path), (who, method, url.path, response.status_code)
