"""Журнал токенов: единственный код, который меняет остатки.

Каждое движение — проводка с уникальным ключом идемпотентности. Ключ вставляется первым
(INSERT … ON CONFLICT DO NOTHING): параллельный повтор ждёт на уникальном индексе и потом
видит готовую проводку. Остаток пользователя меняется условным UPDATE (available + d >= 0),
без чтения-изменения-записи, поэтому параллельные траты не уводят в минус; CHECK в БД —
вторая линия обороны. Системные счета остаток не кэшируют: их строка не становится общей
точкой блокировки, а баланс считает сверка по журналу.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from botapp.billing.errors import HoldAlreadySettled, InsufficientFunds
from botapp.models import (
    Account,
    Hold,
    LedgerEntry,
    LedgerTransaction,
    RefundDebt,
    TelegramUser,
    TransactionKind,
    rows,
)

logger = logging.getLogger(__name__)

AVAILABLE = LedgerEntry.Bucket.AVAILABLE
ON_HOLD = LedgerEntry.Bucket.ON_HOLD

# Системные счета (создаются миграцией 0004)
SALES_STARS = "sales:stars"
SALES_LAVA = "sales:lava"
CONSUMPTION = "consumption"
PROMOTIONS = "promotions"
REFERRALS = "referrals"
ADJUSTMENTS = "adjustments"


@dataclass(frozen=True)
class Movement:
    account_id: int
    bucket: str
    amount: int
    user_account: bool = True  # системные счета остаток не кэшируют


@dataclass(frozen=True)
class Posted:
    """Итог проводки; replayed — ключ уже был, ничего не изменилось."""

    transaction: LedgerTransaction
    replayed: bool
    available: int | None = None
    on_hold: int | None = None


@dataclass(frozen=True)
class Settlement:
    hold_id: int
    status: str
    captured: int
    released: int
    replayed: bool
    # Из released: сколько сразу ушло на погашение долгов по возвратам (RefundDebt)
    debt_repaid: int = 0


@dataclass(frozen=True)
class TakeBack:
    """Итог take_back: taken — снято сейчас, owed — записано долгом, reserved — часть долга, что в холде."""

    taken: int
    owed: int
    reserved: int

    @property
    def spent(self) -> int:
        return self.owed - self.reserved


def system_account_id(code: str) -> int:
    """id системного счёта; создаётся при первом обращении (миграция 0004 создаёт их заранее)."""
    table = Account._meta.db_table
    # Сырой SQL: читается при каждом холде и списании, сборка запроса ORM стоила бы больше него
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE kind = 'system' AND code = %s", [code])  # noqa: S608
        found = cursor.fetchone()
    if found is not None:
        return int(found[0])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (kind, user_id, code, available, on_hold, updated_at) "  # noqa: S608
            "VALUES ('system', NULL, %s, 0, 0, %s) ON CONFLICT (code) WHERE code <> '' DO NOTHING",
            [code, timezone.now()],
        )
    return Account.objects.values_list("pk", flat=True).get(kind=Account.Kind.SYSTEM, code=code)


def account_for(user: TelegramUser) -> Account:
    """Счёт пользователя; создаётся при первом обращении, без гонок между процессами."""
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        # Сырой SQL (rows.py): счёт читают создание задания и каждая доставка
        cursor.execute(f"SELECT {rows.columns(Account, 'a')} FROM {table} a WHERE a.user_id = %s", [user.pk])  # noqa: S608
        found = cursor.fetchone()
    if found is not None:
        return rows.from_row(Account, found)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (kind, user_id, code, available, on_hold, updated_at) "  # noqa: S608
            "VALUES ('user', %s, '', 0, 0, %s) ON CONFLICT (user_id) DO NOTHING",
            [user.pk, timezone.now()],
        )
    return Account.objects.get(user=user)


def reference_label(reference: models.Model) -> str:
    return str(reference._meta.label_lower)


def _reference_fields(reference: models.Model | None) -> dict[str, Any]:
    if reference is None:
        return {"reference_type": "", "reference_id": ""}
    return {"reference_type": reference_label(reference), "reference_id": str(reference.pk)}


def _insert_transaction(
    *, key: str, kind: str, user: TelegramUser | None, fields: dict[str, Any]
) -> tuple[int, Any] | None:
    """Вставить заголовок проводки; None — ключ уже занят (повтор)."""
    table = LedgerTransaction._meta.db_table
    reference_type = fields["reference_type"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (idempotency_key, kind, user_id, reference_type, reference_id, "  # noqa: S608
            "actor_id, reason, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at",
            [
                key,
                kind,
                user.pk if user else None,
                reference_type,
                fields["reference_id"],
                fields.get("actor_id"),
                fields.get("reason", "")[:500],
                timezone.now(),
            ],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def _apply_user_deltas(account_id: int, deltas: dict[str, int]) -> tuple[int, int]:
    """Условный UPDATE: не меняет строку, если хоть одна корзина ушла бы в минус."""
    table = Account._meta.db_table
    d_available, d_hold = deltas.get(AVAILABLE, 0), deltas.get(ON_HOLD, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET available = available + %s, on_hold = on_hold + %s, "  # noqa: S608
            "updated_at = %s WHERE id = %s AND kind = 'user' "
            "AND available + %s >= 0 AND on_hold + %s >= 0 RETURNING available, on_hold",
            [d_available, d_hold, timezone.now(), account_id, d_available, d_hold],
        )
        row = cursor.fetchone()
    if row is None:
        raise InsufficientFunds(f"account {account_id}: available {d_available:+d}, on hold {d_hold:+d}")
    return int(row[0]), int(row[1])


def ledger_post(
    *,
    key: str,
    kind: str,
    user: TelegramUser | None,
    movements: list[Movement],
    reference: models.Model | None = None,
    actor_id: int | None = None,
    reason: str = "",
    savepoint: bool = True,
) -> Posted:
    """Провести движение атомарно и идемпотентно.

    Сумма движений обязана быть нулевой. Повтор ключа возвращает прежнюю проводку (replayed=True)
    и ничего не меняет. InsufficientFunds откатывает всё, включая заголовок.
    """
    if sum(m.amount for m in movements) != 0:
        raise ValueError("movements must sum to zero")
    by_bucket: dict[tuple[int, str], int] = defaultdict(int)
    user_accounts: set[int] = set()
    for movement in movements:
        by_bucket[(movement.account_id, movement.bucket)] += movement.amount
        if movement.user_account:
            user_accounts.add(movement.account_id)
    # savepoint=False — для вызовов изнутри сервиса, который сам не ловит ошибку (холд, урегулирование):
    # минус два обращения к БД; ловящим InsufficientFunds внутри своей транзакции нужна точка сохранения
    with transaction.atomic(savepoint=savepoint):
        fields = {**_reference_fields(reference), "actor_id": actor_id, "reason": reason}
        inserted = _insert_transaction(key=key, kind=kind, user=user, fields=fields)
        if inserted is None:
            return Posted(transaction=LedgerTransaction.objects.get(idempotency_key=key), replayed=True)
        transaction_id, created_at = inserted
        per_account: dict[int, dict[str, int]] = defaultdict(dict)
        for (account_id, bucket), amount in by_bucket.items():
            if amount:
                per_account[account_id][bucket] = amount
        balances: dict[int, tuple[int, int]] = {}
        # Порядок по id: несколько пользовательских счетов в одной проводке не дадут взаимоблокировки
        for account_id in sorted(per_account):
            if account_id in user_accounts:
                balances[account_id] = _apply_user_deltas(account_id, per_account[account_id])
        entries: list[tuple[int, int, str, int, int | None]] = []
        for account_id, buckets in per_account.items():
            for bucket, amount in buckets.items():
                after = None
                if account_id in balances:
                    after = balances[account_id][0 if bucket == AVAILABLE else 1]
                entries.append((transaction_id, account_id, bucket, amount, after))
        _insert_entries(entries)
    posted = LedgerTransaction(
        id=transaction_id,
        idempotency_key=key,
        kind=kind,
        user=user,
        actor_id=actor_id,
        reason=reason[:500],
        created_at=created_at,
        **_reference_fields(reference),
    )
    posted._state.adding = False
    user_balance = next(iter(balances.values()), (None, None))
    return Posted(transaction=posted, replayed=False, available=user_balance[0], on_hold=user_balance[1])


def _insert_entries(entries: list[tuple[int, int, str, int, int | None]]) -> None:
    """Строки проводки (проводка, счёт, корзина, сумма, остаток после) одним INSERT.

    Сырой SQL: проводка идёт дважды на каждое задание (холд, списание), а bulk_create собирает
    запрос дороже, чем база его выполняет.
    """
    if not entries:
        return
    rows_sql = ", ".join(["(%s, %s, %s, %s, %s)"] * len(entries))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LedgerEntry._meta.db_table} "  # noqa: S608
            f"(transaction_id, account_id, bucket, amount, balance_after) VALUES {rows_sql}",
            [value for entry in entries for value in entry],
        )


def _transfer(*, user: TelegramUser, delta: int, system: str, key: str, kind: str, **details: Any) -> Posted:
    """Доступные токены пользователя ± delta против системного счёта (сумма проводки — ноль)."""
    account = account_for(user)
    return ledger_post(
        key=key,
        kind=kind,
        user=user,
        movements=[
            Movement(system_account_id(system), AVAILABLE, -delta, user_account=False),
            Movement(account.pk, AVAILABLE, delta),
        ],
        **details,
    )


def credit(
    *,
    user: TelegramUser,
    amount: int,
    key: str,
    kind: str,
    source: str,
    reference: models.Model | None = None,
    actor_id: int | None = None,
    reason: str = "",
) -> Posted:
    """Зачислить токены с системного счёта source (продажи, промо, рефералы, корректировки)."""
    if amount <= 0:
        raise ValueError("credit amount must be positive")
    return _transfer(
        user=user, delta=amount, system=source, key=key, kind=kind,
        reference=reference, actor_id=actor_id, reason=reason,
    )  # fmt: skip


def debit(
    *,
    user: TelegramUser,
    amount: int,
    key: str,
    kind: str,
    destination: str,
    reference: models.Model | None = None,
    actor_id: int | None = None,
    reason: str = "",
) -> Posted:
    """Списать доступные токены на системный счёт; не хватает — InsufficientFunds, ничего не изменилось."""
    if amount <= 0:
        raise ValueError("debit amount must be positive")
    return _transfer(
        user=user, delta=-amount, system=destination, key=key, kind=kind,
        reference=reference, actor_id=actor_id, reason=reason,
    )  # fmt: skip


def hold(
    *,
    user: TelegramUser,
    amount: int,
    key: str,
    reference: models.Model | None = None,
    savepoint: bool = True,
) -> Hold:
    """Заблокировать amount под задание. Повтор ключа возвращает тот же холд (в любом его статусе).

    savepoint=False — внутри транзакции вызывающего, который ошибку не ловит, а отдаёт наружу
    (создание задания): минус два обращения к БД.
    Raises: InsufficientFunds — доступного не хватает; ничего не создано.
    """
    if amount <= 0:
        raise ValueError("hold amount must be positive")
    account = account_for(user)
    reference_fields = _reference_fields(reference)
    table = Hold._meta.db_table
    with transaction.atomic(savepoint=savepoint):
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (account_id, amount, idempotency_key, status, captured_amount, "  # noqa: S608
                "reason, reference_type, reference_id, created_at) "
                "VALUES (%s, %s, %s, 'active', 0, '', %s, %s, %s) "
                "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at",
                [
                    account.pk,
                    amount,
                    key,
                    reference_fields["reference_type"],
                    reference_fields["reference_id"],
                    timezone.now(),
                ],
            )
            row = cursor.fetchone()
        if row is None:
            return Hold.objects.get(idempotency_key=key)
        created = Hold(
            id=row[0],
            account_id=account.pk,
            amount=amount,
            idempotency_key=key,
            status=Hold.Status.ACTIVE,
            created_at=row[1],
            **reference_fields,
        )
        created._state.adding = False
        ledger_post(
            key=f"hold:{created.pk}",
            kind=TransactionKind.HOLD,
            user=user,
            movements=[Movement(account.pk, AVAILABLE, -amount), Movement(account.pk, ON_HOLD, amount)],
            reference=created,
            savepoint=False,
        )
    return created


def _settle(*, hold: Hold, status: str, captured: int, reason: str, savepoint: bool = True) -> Settlement:
    if not 0 <= captured <= hold.amount:
        raise ValueError(f"capture {captured} outside 0..{hold.amount}")
    released = hold.amount - captured
    holds, accounts = Hold._meta.db_table, Account._meta.db_table
    with transaction.atomic(savepoint=savepoint):
        # Условный переход active → итог: урегулировать может только один вызов. Владелец счёта —
        # тем же оператором (сырой SQL: урегулирование идёт на каждое задание)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {holds} SET status = %s, captured_amount = %s, settled_at = %s, reason = %s "  # noqa: S608
                f"WHERE id = %s AND status = %s "
                f"RETURNING (SELECT a.user_id FROM {accounts} a WHERE a.id = {holds}.account_id), "
                # Счёт потребления — тем же оператором: отдельный SELECT был бы ещё одним кругом к БД
                f"(SELECT s.id FROM {accounts} s WHERE s.kind = 'system' AND s.code = %s)",
                [
                    str(status), captured, timezone.now(), reason[:200], hold.pk, Hold.Status.ACTIVE.value,
                    CONSUMPTION,
                ],
            )  # fmt: skip
            updated = cursor.fetchone()
        if updated is None:
            current = Hold.objects.get(pk=hold.pk)
            if current.status == status and current.captured_amount == captured:
                return Settlement(hold.pk, status, captured, released, replayed=True)
            raise HoldAlreadySettled(
                f"hold {hold.pk} is {current.status} ({current.captured_amount} captured)"
            )
        owner_id, consumption_id = updated
        movements = [Movement(hold.account_id, ON_HOLD, -hold.amount)]
        if captured:
            consumption = consumption_id or system_account_id(CONSUMPTION)
            movements.append(Movement(consumption, AVAILABLE, captured, user_account=False))
        if released:
            movements.append(Movement(hold.account_id, AVAILABLE, released))
        ledger_post(
            # Один ключ на урегулирование холда: второе урегулирование невозможно и на уровне БД
            key=f"settle:hold:{hold.pk}",
            kind=TransactionKind.CAPTURE if status == Hold.Status.CAPTURED else TransactionKind.RELEASE,
            user=TelegramUser(pk=owner_id),
            movements=movements,
            reference=hold,
            reason=reason,
            savepoint=False,
        )
        debt_repaid = 0
        if released:
            # Та же транзакция, что и возврат холда: урегулирование одно — и погашение из него одно.
            # Только после проводки: её UPDATE держит строку счёта, так что параллельный take_back либо
            # уже закоммичен (его долг виден этому запросу), либо ждёт нас и заберёт вернувшееся сам.
            # Полное списание (частый случай) этот запрос не делает
            debt_repaid = _debts_repay(
                account_id=hold.account_id, owner_id=owner_id, limit=released, trigger=f"hold:{hold.pk}"
            )
    return Settlement(hold.pk, status, captured, released, replayed=False, debt_repaid=debt_repaid)


def _debts_repay(*, account_id: int, owner_id: int, limit: int, trigger: str) -> int:
    """Погасить долги по возвратам (старые первыми) из limit токенов, только что вернувшихся в доступное.

    Вызывается внутри транзакции возврата холда: строка счёта уже заблокирована её UPDATE, так что
    limit токенов точно в доступном. Проводка погашения — с ключом `debt:<долг>:<повод>`, repaid растёт
    условным UPDATE (сравнение с прочитанным под блокировкой), CHECK не даёт погасить больше долга.
    Возвращает, сколько погашено.
    """
    repaid = 0
    owner = TelegramUser(pk=owner_id)
    debts = RefundDebt.objects.select_for_update().filter(account_id=account_id, repaid_at__isnull=True)
    for debt in debts.order_by("pk"):
        part = min(debt.outstanding, limit - repaid)
        if part <= 0:
            break
        posted = ledger_post(
            key=f"debt:{debt.pk}:{trigger}",
            kind=debt.kind,
            user=owner,
            movements=[
                Movement(account_id, AVAILABLE, -part),
                Movement(system_account_id(debt.destination), AVAILABLE, part, user_account=False),
            ],
            reference=debt,
            reason="refund debt repaid",
            savepoint=False,
        )
        if posted.replayed:
            continue
        settled = debt.repaid + part == debt.amount
        updated = RefundDebt.objects.filter(pk=debt.pk, repaid=debt.repaid).update(
            repaid=F("repaid") + part, repaid_at=timezone.now() if settled else None
        )
        if updated != 1:
            raise RuntimeError(f"refund debt {debt.pk} changed under its lock")
        repaid += part
        logger.info("refund debt %s: %s tokens repaid from %s", debt.pk, part, trigger)
    return repaid


def debt_outstanding(*, user: TelegramUser) -> int:
    """Сколько токенов пользователь ещё должен по возвратам."""
    open_debts = RefundDebt.objects.filter(account__user=user, repaid_at__isnull=True)
    total = open_debts.aggregate(total=models.Sum(F("amount") - F("repaid")))["total"]
    return int(total or 0)


def take_back(
    *,
    user: TelegramUser,
    amount: int,
    key: str,
    kind: str,
    destination: str,
    reference: models.Model,
    actor_id: int | None = None,
    reason: str = "",
) -> TakeBack:
    """Забрать amount токенов после возврата денег: сколько есть в доступном, остальное — долгом.

    Деньги уже ушли, отказаться нельзя, а баланс в минус не уводим. Недостача — RefundDebt с ключом
    `<key>:debt`: токены в холде вернутся при неудаче задания и сразу погасят долг (_debts_repay).
    Вызывающий гарантирует один вызов на причину (строка платежа под блокировкой, условный UPDATE
    реферала); ключи проводки и долга — вторая линия обороны.
    """
    if amount <= 0:
        raise ValueError("take back amount must be positive")
    account = account_for(user)
    with transaction.atomic():
        # Под блокировкой счёта: доступное и резерв не меняются между чтением и списанием
        locked = Account.objects.select_for_update().only("available", "on_hold").get(pk=account.pk)
        taken = min(amount, locked.available)
        if taken:
            debit(
                user=user, amount=taken, key=key, kind=kind, destination=destination,
                reference=reference, actor_id=actor_id, reason=reason,
            )  # fmt: skip
        owed = amount - taken
        reserved = min(owed, locked.on_hold)
        if owed:
            RefundDebt.objects.get_or_create(
                idempotency_key=f"{key}:debt",
                defaults={
                    "account_id": account.pk,
                    "kind": kind,
                    "destination": destination,
                    "amount": owed,
                    "reserved": reserved,
                    **_reference_fields(reference),
                },
            )
    return TakeBack(taken=taken, owed=owed, reserved=reserved)


def capture(*, hold: Hold, amount: int, savepoint: bool = True) -> Settlement:
    """Списать до amount из холда, остаток вернуть — в одной транзакции (одно урегулирование на холд).

    capture(0) — то же, что release. Повтор с той же суммой возвращает прежний итог.
    savepoint — как у hold.
    Raises: HoldAlreadySettled — холд уже урегулирован иначе.
    """
    if amount == 0:
        return release(hold=hold, reason="nothing delivered", savepoint=savepoint)
    return _settle(hold=hold, status=Hold.Status.CAPTURED, captured=amount, reason="", savepoint=savepoint)


def release(*, hold: Hold, reason: str, savepoint: bool = True) -> Settlement:
    """Вернуть весь холд. Повтор возвращает прежний итог; после списания — HoldAlreadySettled."""
    return _settle(hold=hold, status=Hold.Status.RELEASED, captured=0, reason=reason, savepoint=savepoint)


def adjust(*, user: TelegramUser, amount: int, actor: Any, reason: str, key: str) -> Posted:
    """Ручная корректировка персоналом: причина обязательна, действие — в журнал аудита.

    Raises: InsufficientFunds — списание больше доступного (баланс не уходит в минус).
    """
    from botapp.billing.audit import audit_record

    if not reason.strip():
        raise ValueError("an adjustment needs a reason")
    if amount == 0:
        raise ValueError("an adjustment needs a non-zero amount")
    with transaction.atomic():
        move = credit if amount > 0 else debit
        account_code = {"source": ADJUSTMENTS} if amount > 0 else {"destination": ADJUSTMENTS}
        posted = move(
            user=user,
            amount=abs(amount),
            key=key,
            kind=TransactionKind.ADJUSTMENT,
            actor_id=actor.pk,
            reason=reason,
            **account_code,  # type: ignore[arg-type]
        )
        if not posted.replayed:
            audit_record(
                actor=actor,
                action="balance.adjust",
                target=user,
                details={"amount": amount, "reason": reason, "transaction": posted.transaction.pk},
            )
    return posted
