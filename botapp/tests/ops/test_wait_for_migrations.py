"""manage.py wait_for_migrations: pre-deploy воркера и beat ждёт миграций, которые применяет web."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

pytestmark = pytest.mark.django_db


def test_it_returns_at_once_when_the_schema_is_current() -> None:
    out = io.StringIO()
    call_command("wait_for_migrations", "--timeout", "0", stdout=out)
    assert out.getvalue().strip() == "all migrations are applied"


def test_it_fails_when_a_migration_of_this_code_is_not_applied_in_time() -> None:
    """Web ещё не применил (или не смог применить) миграцию релиза — воркер не стартует новым кодом."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE id = "
            "(SELECT max(id) FROM django_migrations WHERE app = 'botapp') RETURNING name"
        )
        [(name,)] = cursor.fetchall()
    out = io.StringIO()
    with pytest.raises(CommandError, match=f"botapp.{name}"):
        call_command("wait_for_migrations", "--timeout", "0.3", "--interval", "0.1", stdout=out)
    assert f"waiting for 1 migration(s): botapp.{name}" in out.getvalue()
