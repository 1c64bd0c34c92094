"""Периодическая сверка денег выполняется настоящим воркером и поднимает событие ошибки."""

from __future__ import annotations

from typing import Any

import pytest

from botapp.billing import ledger
from botapp.models import Account, ErrorGroup
from botapp.tasks.billing import reconcile_ledger
from botapp.tests.billing.factories import user_fund, user_make
from botapp.tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_worker_reconciliation_reports_a_corrupted_balance(celery_worker_process: Any) -> None:
    user = user_make()
    user_fund(user, 50)
    account = ledger.account_for(user)
    Account.objects.filter(pk=account.pk).update(available=51)
    reconcile_ledger.delay()
    wait_for(
        lambda: ErrorGroup.objects.filter(source="billing.reconcile").exists(),
        timeout=30,
        what="reconciliation error recorded by the worker",
    )
    Account.objects.filter(pk=account.pk).update(available=50)
