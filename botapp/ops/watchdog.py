"""Сторож в процессе beat: оповещает, когда здоровье уходит из `ok`.

Живёт в beat, а не в задаче: если умерли все воркеры, задача бы не выполнилась.
"""

from __future__ import annotations

from botapp.ops import health, notify

_KEY = "health"


def watchdog_check() -> str:
    report = health.health_report(use_cache=False)
    status = str(report["status"])
    if status == health.OK:
        notify.alert_clear(key=_KEY, text="✅ NanoBanana: health is ok again")
        return status
    failing = [
        f"{name}: {check['status']} ({check.get('detail', '')})"
        for name, check in report["checks"].items()
        if check["status"] not in (health.OK, health.INFO)
    ]
    notify.alert_send(key=_KEY, text=f"⚠️ NanoBanana health: {status}\n" + "\n".join(failing))
    return status
