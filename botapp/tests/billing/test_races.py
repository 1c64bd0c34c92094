"""Гонки на настоящей PostgreSQL: ≥4 ОС-процесса со своими соединениями, отпущенные барьером."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.test import override_settings

from botapp.billing import bonuses, ledger, payments
from botapp.models import Hold, LedgerTransaction, Payment, PromoCode, TransactionKind
from botapp.tests.billing.factories import balance, package_make, user_fund, user_make
from botapp.tests.support.parallel import run_in_processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TARGETS = "botapp.tests.billing.parallel_targets"


def test_fifty_parallel_holds_of_ten_on_a_balance_of_one_hundred_let_exactly_ten_through() -> None:
    user = user_make()
    user_fund(user, 100)
    batches = [
        {"telegram_id": user.telegram_id, "amount": 10, "keys": [f"p{proc}-{i}" for i in range(10)]}
        for proc in range(5)
    ]
    outcomes = [o for batch in run_in_processes(f"{TARGETS}:hold_many", batches) for o in batch]
    assert outcomes.count("held") == 10
    assert outcomes.count("refused") == 40
    assert balance(user) == (0, 100)
    assert Hold.objects.filter(status=Hold.Status.ACTIVE).count() == 10


def test_the_same_hold_key_from_four_processes_holds_once() -> None:
    user = user_make()
    user_fund(user, 100)
    batches = [{"telegram_id": user.telegram_id, "amount": 30, "keys": ["job-42"]} for _ in range(4)]
    run_in_processes(f"{TARGETS}:hold_many", batches)
    assert balance(user) == (70, 30)
    assert Hold.objects.count() == 1


def test_racing_capture_and_release_settle_a_hold_once() -> None:
    user = user_make()
    user_fund(user, 100)
    held = ledger.hold(user=user, amount=40, key="job-1")
    results = run_in_processes(
        f"{TARGETS}:settle", [{"hold_id": held.pk, "how": how} for how in ("capture", "release") * 2]
    )
    winners = [r for r in results if r != "refused"]
    # Одинаковые повторы идемпотентны; разные — второй отвергнут
    assert len(set(winners)) == 1
    assert LedgerTransaction.objects.filter(idempotency_key=f"settle:hold:{held.pk}").count() == 1
    assert balance(user) in ((60, 0), (100, 0))


def _in_thread(work: Callable[[], object], *, pause: threading.Event | None = None) -> threading.Thread:
    """work в своей нити и своём соединении; pause — не коммитить, пока событие не выставлено."""
    done = threading.Event()

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                done.set()
                if pause is not None:
                    pause.wait(30)
        finally:
            done.set()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    if pause is not None:
        assert done.wait(30)
    return thread


def _wait_until_someone_waits_for_a_lock() -> None:
    with connection.cursor() as cursor:
        for _ in range(300):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first")


@pytest.mark.parametrize("first", ["refund", "release"])
def test_a_refund_racing_the_release_of_the_reserved_tokens_takes_them_all_back(first: str) -> None:
    user = user_make()
    user_fund(user, 70)
    held = ledger.hold(user=user, amount=54, key="job-1")

    def refund() -> object:
        return ledger.take_back(
            user=user, amount=50, key="refund-1", kind=TransactionKind.PAYMENT_REFUND,
            destination=ledger.SALES_STARS, reference=user,
        )  # fmt: skip

    def release() -> object:
        return ledger.release(hold=held, reason="job failed")

    steps = {"refund": refund, "release": release}
    # Первая транзакция сделала своё и держит блокировки; вторая упирается в них, потом первая коммитит
    commit = threading.Event()
    holder = _in_thread(steps[first], pause=commit)
    waiter = _in_thread(steps["release" if first == "refund" else "refund"])
    _wait_until_someone_waits_for_a_lock()
    commit.set()
    holder.join(30)
    waiter.join(30)
    # Какая бы сторона ни успела первой, возврат забрал все 50: доступным сейчас или из вернувшегося холда
    assert balance(user) == (20, 0)
    assert ledger.debt_outstanding(user=user) == 0


def test_three_concurrent_successful_payment_copies_credit_once() -> None:
    user = user_make()
    package = package_make(stars=150, tokens=150, bonus_percent=10)
    invoice = payments.invoice_create_stars(user=user, package=package)
    copy = {
        "charge_id": "stxRACE",
        "payload": payments.invoice_payload(invoice),
        "currency": "XTR",
        "total_amount": package.stars,
        "telegram_id": user.telegram_id,
        "raw": {},
    }
    created = run_in_processes(f"{TARGETS}:stars_complete", [copy] * 4)
    assert created.count(True) == 1
    assert Payment.objects.get().amount == Decimal(package.stars)
    assert balance(user) == (package.total_tokens, 0)


def test_twelve_parallel_unknown_promo_codes_from_one_user_are_looked_up_only_five_times() -> None:
    """Перебор параллельными апдейтами: попытка занимается до поиска (INCR), проверку не проскочить."""
    user = user_make()
    guesses = [{"telegram_id": user.telegram_id, "code": f"guess{i}"} for i in range(12)]
    statuses = run_in_processes(f"{TARGETS}:promo_redeem", guesses)
    assert statuses.count("not_found") == bonuses.PROMO_MISSES_MAX
    assert statuses.count("too_many") == 12 - bonuses.PROMO_MISSES_MAX
    cache.delete(f"promo-misses:{user.pk}")


def test_without_the_cache_promo_codes_still_work_without_the_guessing_limit() -> None:
    """Redis лежит: лимит перебора не действует, а промокод гасится (не извинение вместо бонуса)."""
    PromoCode.objects.create(code="spring", amount=15, max_redemptions=5)
    user = user_make()
    dead = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    with override_settings(CACHES=dead):
        misses = [bonuses.promo_redeem(user=user, code=f"miss{i}").status for i in range(6)]
        assert misses == ["not_found"] * 6
        assert bonuses.promo_redeem(user=user, code="SPRING").status == "ok"
    assert balance(user) == (15, 0)


def test_a_promo_capped_at_five_under_twenty_parallel_redemptions_pays_five() -> None:
    PromoCode.objects.create(code="launch", amount=15, max_redemptions=5)
    users = [user_make() for _ in range(20)]
    statuses = run_in_processes(
        f"{TARGETS}:promo_redeem", [{"telegram_id": u.telegram_id, "code": "LAUNCH"} for u in users]
    )
    assert statuses.count("ok") == 5
    assert statuses.count("exhausted") == 15
    assert PromoCode.objects.get().redeemed_count == 5
    assert sum(balance(u)[0] for u in users) == 75
