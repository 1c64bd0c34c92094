"""Журнал действий персонала."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from botapp.models import StaffAuditLog


def audit_record(
    *, actor: Any, action: str, target: models.Model | None, details: dict[str, Any]
) -> StaffAuditLog:
    return StaffAuditLog.objects.create(
        actor=actor,
        action=action,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=str(target.pk) if target is not None else "",
        details=details,
    )
