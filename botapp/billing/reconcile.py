"""Сверка денег чистым SQL, независимо от сервисов журнала (ARCHITECTURE §4 «Money invariants»).

Если сервисы ошиблись, эти запросы не повторят их ошибку: они не пользуются ни одной
функцией ledger.py, только таблицами.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from botapp.models import Account, GenerationJob, Hold, LedgerEntry, LedgerTransaction, RefundDebt

logger = logging.getLogger(__name__)

_T = {
    "job": GenerationJob._meta.db_table,
    "account": Account._meta.db_table,
    "entry": LedgerEntry._meta.db_table,
    "tx": LedgerTransaction._meta.db_table,
    "hold": Hold._meta.db_table,
    "debt": RefundDebt._meta.db_table,
}

# (имя проверки, SQL, который возвращает строки-нарушения)
CHECKS: list[tuple[str, str]] = [
    (
        "ledger sum is not zero",
        "SELECT SUM(amount) FROM {entry} HAVING SUM(amount) <> 0",
    ),
    (
        "transaction does not balance",
        "SELECT transaction_id, SUM(amount) FROM {entry} GROUP BY transaction_id HAVING SUM(amount) <> 0",
    ),
    (
        "cached balance differs from ledger",
        """
        SELECT a.id, a.available, COALESCE(s.available, 0), a.on_hold, COALESCE(s.on_hold, 0)
        FROM {account} a
        LEFT JOIN (
            SELECT account_id,
                   SUM(CASE WHEN bucket = 'available' THEN amount ELSE 0 END) AS available,
                   SUM(CASE WHEN bucket = 'on_hold' THEN amount ELSE 0 END) AS on_hold
            FROM {entry} GROUP BY account_id
        ) s ON s.account_id = a.id
        WHERE a.kind = 'user'
          AND (a.available <> COALESCE(s.available, 0) OR a.on_hold <> COALESCE(s.on_hold, 0))
        """,
    ),
    (
        "negative user balance",
        "SELECT id, available, on_hold FROM {account} WHERE kind = 'user' AND (available < 0 OR on_hold < 0)",
    ),
    (
        "duplicate idempotency key",
        "SELECT idempotency_key, COUNT(*) FROM {tx} GROUP BY idempotency_key HAVING COUNT(*) > 1",
    ),
    (
        "hold settled more than once",
        """
        SELECT h.id, COUNT(t.id) FROM {hold} h
        JOIN {tx} t ON t.reference_type = 'botapp.hold' AND t.reference_id = CAST(h.id AS VARCHAR)
             AND t.kind IN ('capture', 'release')
        GROUP BY h.id HAVING COUNT(t.id) > 1
        """,
    ),
    (
        "hold status disagrees with its settlement",
        """
        SELECT h.id, h.status, COUNT(t.id) FROM {hold} h
        LEFT JOIN {tx} t ON t.reference_type = 'botapp.hold' AND t.reference_id = CAST(h.id AS VARCHAR)
             AND t.kind IN ('capture', 'release')
        GROUP BY h.id, h.status
        HAVING (h.status = 'active') <> (COUNT(t.id) = 0)
        """,
    ),
    (
        "hold outlived its job's deadline",
        """
        SELECT h.id, j.id, j.status FROM {hold} h
        JOIN {job} j ON h.reference_type = 'botapp.generationjob' AND h.reference_id = CAST(j.id AS VARCHAR)
        WHERE h.status = 'active' AND j.deadline < %(cutoff)s AND j.status NOT IN ('running', 'generated')
        """,
    ),
    (
        "on-hold balance differs from active holds",
        """
        SELECT a.id, a.on_hold, COALESCE(SUM(h.amount), 0) FROM {account} a
        LEFT JOIN {hold} h ON h.account_id = a.id AND h.status = 'active'
        WHERE a.kind = 'user'
        GROUP BY a.id, a.on_hold HAVING a.on_hold <> COALESCE(SUM(h.amount), 0)
        """,
    ),
    (
        # Погашено по строке долга ровно столько, сколько списали проводки погашения этого долга
        "refund debt repaid differs from its ledger postings",
        """
        SELECT d.id, d.repaid, COALESCE(SUM(-e.amount), 0) FROM {debt} d
        LEFT JOIN {tx} t ON t.reference_type = 'botapp.refunddebt' AND t.reference_id = CAST(d.id AS VARCHAR)
        LEFT JOIN {entry} e ON e.transaction_id = t.id AND e.account_id = d.account_id
        GROUP BY d.id, d.repaid HAVING d.repaid <> COALESCE(SUM(-e.amount), 0)
        """,
    ),
]


@dataclass
class Report:
    problems: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return "ledger reconciled: all invariants hold"
        lines = [f"{name}: {len(rows)} row(s), e.g. {rows[:3]}" for name, rows in self.problems.items()]
        return "ledger mismatch:\n" + "\n".join(lines)


# Сборщик просрочивает задания раз в JOB_SWEEP_INTERVAL_S: даём ему время, прежде чем считать нарушением
DEADLINE_GRACE = timedelta(minutes=10)


def reconcile_ledger() -> Report:
    report = Report()
    params = {"cutoff": timezone.now() - DEADLINE_GRACE}
    with connection.cursor() as cursor:
        for name, sql in CHECKS:
            cursor.execute(sql.format(**_T), params)
            rows = [tuple(row) for row in cursor.fetchall()]
            if rows:
                report.problems[name] = rows
    return report


class LedgerMismatch(Exception):
    """Сверка нашла нарушение инвариантов денег."""


def reconcile_and_alert() -> Report:
    """Сверка по расписанию: нарушение — событие ошибки и оповещение операторам."""
    from botapp.ops import metrics
    from botapp.ops.errors import error_record
    from botapp.ops.notify import alert_send

    report = reconcile_ledger()
    metrics.reconciliation_record(ok=report.ok, problems=len(report.problems))
    if not report.ok:
        summary = report.summary()
        try:
            raise LedgerMismatch(summary)
        except LedgerMismatch as exc:
            error_record(source="billing.reconcile", exc=exc, context={"problems": list(report.problems)})
        alert_send(key="ledger-mismatch", text=f"⚠️ {summary}"[:4000])
    return report
