"""Чтение пользователей для панели: поиск и карточка (профиль, деньги, задания, платежи, переписка)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from botapp.billing.selectors import HistoryRow, ledger_history
from botapp.models import Account, ChatLogEntry, Payment, Referral, TelegramUser
from dashboard.selectors.generations import JobRow, job_rows

SEARCH_LIMIT = 50
LEDGER_PER_PAGE = 20
JOBS_SHOWN = 20
PAYMENTS_SHOWN = 50
CHAT_SHOWN = 50


@dataclass(frozen=True)
class UserCard:
    user: TelegramUser
    available: int
    on_hold: int
    ledger: list[HistoryRow]
    ledger_page: int
    ledger_has_next: bool
    jobs: list[JobRow]
    payments: list[Payment]
    invited: list[Referral]
    invited_by: Referral | None
    chat_log: list[ChatLogEntry]


def users_search(*, query: str) -> list[TelegramUser]:
    """По Telegram id (число), @username или словам имени; пустой запрос — недавно активные."""
    query = query.strip()
    users = TelegramUser.objects.order_by("-last_seen_at")
    if not query:
        return list(users[:SEARCH_LIMIT])
    if query.isdigit():
        return list(users.filter(Q(telegram_id=int(query)) | Q(pk=int(query)))[:SEARCH_LIMIT])
    condition = Q()
    for word in query.lstrip("@").split():
        condition &= (
            Q(username__icontains=word) | Q(first_name__icontains=word) | Q(last_name__icontains=word)
        )
    return list(users.filter(condition)[:SEARCH_LIMIT])


def user_card(*, user: TelegramUser, ledger_page: int) -> UserCard:
    """Всё для страницы пользователя; страница ничего не пишет (счёт не создаётся)."""
    balance = Account.objects.filter(user=user).values_list("available", "on_hold").first()
    history: list[HistoryRow] = []
    has_next = False
    if balance is not None:
        history, has_next = ledger_history(user=user, page=ledger_page, per_page=LEDGER_PER_PAGE)
    jobs = user.jobs.select_related("model").order_by("-created_at", "-id")[:JOBS_SHOWN]
    chat = (
        ChatLogEntry.objects.filter(user=user).select_related("staff_author").order_by("-created_at", "-id")
    )
    return UserCard(
        user=user,
        available=balance[0] if balance else 0,
        on_hold=balance[1] if balance else 0,
        ledger=history,
        ledger_page=ledger_page,
        ledger_has_next=has_next,
        jobs=job_rows(jobs=jobs),
        payments=list(user.payments.select_related("package").order_by("-created_at")[:PAYMENTS_SHOWN]),
        invited=list(Referral.objects.filter(inviter=user).select_related("invitee").order_by("-created_at")),
        invited_by=Referral.objects.filter(invitee=user).select_related("inviter").first(),
        chat_log=list(reversed(chat[:CHAT_SHOWN])),
    )
