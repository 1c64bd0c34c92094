"""Журнал действий персонала."""

from __future__ import annotations

from typing import Any

from django.db import models

from botapp.models import StaffAuditLog


def audit_record(
    *, actor: Any, action: str, target: models.Model | None, details: dict[str, Any]
) -> StaffAuditLog:
    return StaffAuditLog.objects.create(
        actor=actor,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        details=details,
    )
