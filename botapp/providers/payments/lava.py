"""lava.top Public API: создать счёт и перечитать контракт. Единственный модуль, который ходит к lava.

Спецификация — рядом, lava-top-openapi.yaml (по ней же проверяет запросы тестовая подделка).
Возвращает простые dataclass и бросает только наши ошибки: ProviderTransientError (сеть, 429,
5xx — повторить позже) и ProviderPermanentError (ключ, оффер, битый ответ — повтор не поможет).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.conf import settings

from botapp.providers.base import ProviderPermanentError, ProviderTransientError

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-Api-Key"  # pragma: allowlist secret
TIMEOUT_S = 10.0
# Статусы контракта (InvoiceStatus); зачисляем только COMPLETED
STATUS_COMPLETED = "COMPLETED"
CURRENCIES = ("RUB", "USD", "EUR")
# Язык писем и платёжной страницы (LanguageDto)
LANGUAGES = {"ru": "RU", "en": "EN"}
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class LavaInvoice:
    """Созданный контракт: его id — внешний ключ нашего счёта и будущего платежа."""

    contract_id: str
    payment_url: str
    status: str


@dataclass(frozen=True)
class LavaContract:
    """Контракт, как его видит lava сейчас (GET /api/v2/invoices/{id})."""

    contract_id: str
    status: str
    amount: Decimal | None
    currency: str
    raw: dict[str, Any]

    @property
    def completed(self) -> bool:
        return self.status == STATUS_COMPLETED

    @property
    def has_receipt(self) -> bool:
        """В чеке есть сумма и валюта — есть с чем сверить счёт."""
        return self.amount is not None and bool(self.currency)


def _request(method: str, path: str, *, json: dict[str, Any] | None = None) -> httpx.Response:
    if not settings.LAVA_API_KEY:
        raise ProviderPermanentError("LAVA_API_KEY is not set", category="forbidden")
    try:
        with httpx.Client(base_url=settings.LAVA_API_BASE_URL, timeout=TIMEOUT_S) as client:
            response = client.request(
                method,
                path,
                json=json,
                headers={API_KEY_HEADER: settings.LAVA_API_KEY, "Accept": "application/json"},
            )
    except httpx.TransportError as exc:
        raise ProviderTransientError(f"lava.top {method} {path}: {type(exc).__name__}") from exc
    if response.status_code in _TRANSIENT_STATUSES:
        raise ProviderTransientError(f"lava.top {method} {path}: HTTP {response.status_code}")
    return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderPermanentError(f"lava.top answered non-JSON (HTTP {response.status_code})") from exc
    if not isinstance(data, dict):
        raise ProviderPermanentError(f"lava.top answered {type(data).__name__}, expected an object")
    return data


def _refused(response: httpx.Response, what: str) -> ProviderPermanentError:
    # Текст ошибки lava — в лог и исключение; ключ в нём не бывает (мы его не отправляем в теле)
    detail = response.text[:300]
    category = "forbidden" if response.status_code in (401, 403) else "invalid_request"
    return ProviderPermanentError(f"lava.top {what}: HTTP {response.status_code} {detail}", category=category)


def lava_invoice_create(*, email: str, offer_id: str, currency: str, language: str) -> LavaInvoice:
    """POST /api/v2/invoice: разовая покупка оффера; ссылка на оплату — в ответе."""
    body = {
        "email": email,
        "offerId": offer_id,
        "currency": currency,
        "periodicity": "ONE_TIME",
        "buyerLanguage": LANGUAGES.get(language, "EN"),
    }
    response = _request("POST", "/api/v2/invoice", json=body)
    if response.status_code not in (200, 201):
        raise _refused(response, "invoice refused")
    data = _json(response)
    contract_id, payment_url = data.get("id"), data.get("paymentUrl")
    if not isinstance(contract_id, str) or not contract_id:
        raise ProviderPermanentError("lava.top invoice has no id")
    if not isinstance(payment_url, str) or not payment_url.startswith("https://"):
        # Пустая ссылка бывает у бесплатных продуктов — пакет токенов таким быть не должен
        raise ProviderPermanentError(f"lava.top invoice {contract_id} has no payment URL")
    return LavaInvoice(contract_id=contract_id, payment_url=payment_url, status=str(data.get("status", "")))


def lava_contract_get(*, contract_id: str) -> LavaContract | None:
    """GET /api/v2/invoices/{id}; None — lava такого контракта не знает (404)."""
    response = _request("GET", f"/api/v2/invoices/{contract_id}")
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise _refused(response, f"contract {contract_id}")
    data = _json(response)
    if data.get("id") != contract_id:
        raise ProviderPermanentError(f"lava.top answered contract {data.get('id')!r} for {contract_id}")
    receipt = data.get("receipt")
    if not isinstance(receipt, dict):
        receipt = {}
    try:
        amount = Decimal(str(receipt["amount"])) if receipt.get("amount") is not None else None
    except InvalidOperation:
        amount = None
    return LavaContract(
        contract_id=contract_id,
        status=str(data.get("status", "")),
        amount=amount,
        currency=str(receipt.get("currency") or ""),
        raw=data,
    )
