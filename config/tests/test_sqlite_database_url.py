"""DATABASE_URL=sqlite:///… (ARCHITECTURE §7): процессы стартуют, режим — как у встроенного SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from botapp.tests.support.processes import base_env, migrate, web_server

pytestmark = pytest.mark.slow


def _sqlite_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    db = tmp_path / "explicit.sqlite3"
    env = base_env(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite:///{db}",
        LOG_LEVEL="WARNING",
    )
    return env, db


def test_migrate_and_asgi_web_work_with_a_sqlite_database_url(tmp_path: Path) -> None:
    env, db = _sqlite_env(tmp_path)
    migrate(env)
    # Файл из URL, а не var/db.sqlite3, и в режиме WAL, как встроенный
    assert not (tmp_path / "data" / "db.sqlite3").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    # ASGI-процесс (там настройки добавляли пул psycopg) ходит в ту же БД
    with web_server(env, tmp_path / "web.log") as base:
        report = httpx.get(f"{base}/api/health", timeout=10).json()
    database = report["checks"]["database"]
    assert (database["status"], database["vendor"]) == ("ok", "sqlite")
