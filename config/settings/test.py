"""Тесты: настоящие PostgreSQL и Redis (ARCHITECTURE §7 «Tests' defaults»)."""

from __future__ import annotations

from config import env

# Значения по умолчанию для тестов подставляются до импорта base
if not env.DATABASE_URL:
    env.DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
if not env.REDIS_URL:
    env.REDIS_URL = "redis://127.0.0.1:6379/15"

if env.REDIS_KEY_PREFIX == "nb:":
    # Свой префикс на прогон: общий Redis не засоряется и не мешает соседним прогонам
    import uuid

    env.REDIS_KEY_PREFIX = f"nbtest:{uuid.uuid4().hex[:8]}:"

# pytest-xdist: у каждого процесса тестов своя БД (суффикс pytest-django) и свой префикс Redis выше,
# а локальные файлы (медиа, кэш) — своя папка: номера заданий в соседних БД совпадают
if env.PYTEST_XDIST_WORKER and not env.DATA_DIR_GIVEN:
    env.DATA_DIR = env.DATA_DIR / f"test-{env.PYTEST_XDIST_WORKER}"

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# Как в production: панель и админка требуют TOTP (тесты входят с кодом или с подтверждённой сессией)
STAFF_2FA_REQUIRED = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # Тот же драйвер; flush после транзакционных тестов — DELETE, а не медленный TRUNCATE
    DATABASES["default"]["ENGINE"] = "botapp.tests.support.pgtest"  # noqa: F405
