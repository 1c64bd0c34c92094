"""Локальный lava.top: настоящий HTTP-сервер, говорящий по вендорной спецификации lava-top-openapi.yaml.

Каждый запрос проверяется по спецификации (путь и метод, X-Api-Key, параметры пути и запроса,
тело по схеме); несоответствия копятся в `violations`, а клиент получает ответ, который дал бы
строгий сервер (400/401/404). Решения — только по запросу и своему состоянию (офферы, контракты),
которое тест меняет явно: «покупатель оплатил», «lava лежит». Свои ответы подделка тоже сверяет
со спецификацией — так она не может незаметно разойтись с настоящим API.

Строже настоящей lava в двух местах, и оба — из спецификации: тело запроса не может содержать
полей, которых в схеме нет (опечатка в имени поля иначе прошла бы молча — в InvoiceRequestDto
нет списка required), а обязательны поля, общие для всех примеров запроса в спецификации
(email, offerId, currency).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema
import yaml

SPEC_PATH = Path(__file__).resolve().parents[2] / "providers" / "payments" / "lava-top-openapi.yaml"
CHECKOUT_URL = "https://app.lava.top/fake-checkout/{id}"
FAILURE_MESSAGE = "Payment window is opened but not completed"


# --- спецификация ---


@functools.cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def _to_json_schema(node: Any, *, strict: bool) -> Any:
    """Схема OpenAPI 3.0 → JSON Schema draft 4: nullable → anyOf с null; strict закрывает объекты."""
    if isinstance(node, list):
        return [_to_json_schema(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value, strict=strict) for key, value in node.items() if key != "nullable"}
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _components(strict: bool) -> dict[str, Any]:
    converted: dict[str, Any] = _to_json_schema(spec()["components"], strict=strict)
    return converted


def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _format_checker() -> jsonschema.FormatChecker:
    # Встроенная проверка date-time требует rfc3339-validator, которого в окружении нет
    checker = jsonschema.FormatChecker()
    checker.checks("date-time", raises=ValueError)(_date_time)
    return checker


def schema_errors(schema: dict[str, Any], instance: Any, *, strict: bool) -> list[str]:
    """Ошибки экземпляра по схеме из спецификации ($ref внутри components разрешаются)."""
    document = {"components": _components(strict), **_to_json_schema(schema, strict=strict)}
    validator = jsonschema.Draft4Validator(document, format_checker=_format_checker())
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<body>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def component_errors(name: str, instance: Any) -> list[str]:
    return schema_errors({"$ref": f"#/components/schemas/{name}"}, instance, strict=False)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    definition: dict[str, Any]

    def security_headers(self) -> list[str]:
        """Имена заголовков ключа из требований безопасности операции (или всего API)."""
        requirements = self.definition.get("security", spec().get("security", []))
        schemes = spec()["components"]["securitySchemes"]
        return [
            schemes[name]["name"]
            for requirement in requirements
            for name in requirement
            if schemes[name].get("type") == "apiKey" and schemes[name].get("in") == "header"
        ]

    def body_schema(self) -> dict[str, Any] | None:
        body = self.definition.get("requestBody")
        if body is None:
            return None
        schema: dict[str, Any] = body["content"]["application/json"]["schema"]
        return schema

    def required_fields(self) -> set[str]:
        """Поля, которые есть во всех примерах тела запроса (минимальный набор по спецификации)."""
        examples = self.definition.get("requestBody", {}).get("content", {}).get("application/json", {})
        values = [example["value"] for example in examples.get("examples", {}).values()]
        return set.intersection(*(set(value) for value in values)) if values else set()

    def response_schema(self, status: int) -> dict[str, Any] | None:
        response = self.definition.get("responses", {}).get(status) or self.definition.get(
            "responses", {}
        ).get(str(status))
        if not response or "content" not in response:
            return None
        schema: dict[str, Any] = response["content"]["application/json"]["schema"]
        return schema


@functools.cache
def operations() -> tuple[Operation, ...]:
    found = []
    for template, item in spec()["paths"].items():
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        for method, definition in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found.append(Operation(method.upper(), template, re.compile(f"^{pattern}$"), definition))
    return tuple(found)


def _operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    for operation in operations():
        match = operation.regex.match(path)
        if match and operation.method == method:
            return operation, match.groupdict()
    return None


# --- состояние и журнал ---


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # имена в нижнем регистре
    json_body: Any
    status: int
    violations: tuple[str, ...]


@dataclass
class Contract:
    id: str
    offer_id: str
    email: str
    currency: str
    amount: float
    status: str = "NEW"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    receipt: bool = True  # чек (сумма, валюта) в ответе; в спецификации он необязателен
    refused_with: int = 0  # lava отказывает в чтении контракта этим статусом (например, 403 — чужой магазин)


class _Refused(Exception):
    def __init__(self, status: int, error: str, details: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.details = status, error, details or {}


@dataclass
class FakeLava:
    api_key: str
    offers: dict[str, dict[str, float]] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    # Статус, которым отвечать на всё (503 — «lava лежит»), "reset" — рвать соединение,
    # "hang" — молчать hang_s секунд и закрыть соединение без ответа (клиент уходит по таймауту)
    outage: int | str | None = None
    hang_s: float = 2.0
    # Задержать ответы, пока столько запросов не придёт одновременно (гонка повторов вебхука)
    barrier: threading.Barrier | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- управление из теста ---

    @property
    def base_url(self) -> str:
        assert self._server is not None, "сервер не запущен"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def offer_add(self, prices: dict[str, float]) -> str:
        """Оффер продукта с ценами по валютам; возвращает offerId."""
        offer_id = str(uuid.uuid4())
        self.offers[offer_id] = dict(prices)
        return offer_id

    def contract_add(self, *, offer_id: str, currency: str, email: str = "someone@example.com") -> str:
        """Контракт, созданный мимо нашего бота (другой клиент того же ключа)."""
        contract = Contract(str(uuid.uuid4()), offer_id, email, currency, self.offers[offer_id][currency])
        self.contracts[contract.id] = contract
        return contract.id

    def pay(self, contract_id: str, amount: float | None = None, *, receipt: bool = True) -> None:
        """Покупатель оплатил на странице lava; amount — иная сумма чека (скидка оффера в кабинете lava).

        receipt=False — lava уже пишет COMPLETED, а чека в ответе ещё нет.
        """
        self.contracts[contract_id].status = "COMPLETED"
        self.contracts[contract_id].receipt = receipt
        if amount is not None:
            self.contracts[contract_id].amount = amount

    def refuse(self, contract_id: str, status: int = 403) -> None:
        """lava отвечает на чтение этого контракта ошибкой клиента (4xx), и так будет всегда."""
        self.contracts[contract_id].refused_with = status

    def decline(self, contract_id: str) -> None:
        self.contracts[contract_id].status = "FAILED"

    def hold_until_concurrent(self, parties: int) -> None:
        """Следующие `parties` запросов ждут друг друга и отвечают разом (или через 10 с)."""
        self.barrier = threading.Barrier(parties, timeout=10)

    def calls(self, method: str | None = None, prefix: str = "") -> list[LoggedRequest]:
        return [
            r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)
        ]

    @property
    def violations(self) -> list[str]:
        return [f"{r.method} {r.path}: {v}" for r in self.requests for v in r.violations]

    def webhook_payload(
        self, contract_id: str, event: str = "payment.success", **overrides: Any
    ) -> dict[str, Any]:
        """Тело вебхука, как его шлёт lava (PurchaseWebhookLog); сверяется со спецификацией."""
        contract = self.contracts.get(contract_id)
        payload: dict[str, Any] = {
            "eventType": event,
            "product": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "nanobanana")), "title": "Tokens"},
            "buyer": {"email": contract.email if contract else "buyer@example.com"},
            "contractId": contract_id,
            "amount": contract.amount if contract else 1.0,
            "currency": contract.currency if contract else "RUB",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "status": "completed" if event == "payment.success" else "failed",
            "errorMessage": "" if event == "payment.success" else FAILURE_MESSAGE,
        }
        payload.update(overrides)
        errors = component_errors("PurchaseWebhookLog", payload)
        assert errors == [], f"webhook payload does not match the spec: {errors}"
        return payload

    # --- сервер ---

    def __enter__(self) -> FakeLava:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if fake.barrier is not None:
                    with contextlib.suppress(threading.BrokenBarrierError):
                        fake.barrier.wait()
                if fake.outage == "reset":
                    fake._log(self.command, self.path, self.headers, None, 0, ())
                    self.close_connection = True
                    return
                if fake.outage == "hang":
                    # Запрос записан сразу; ответа нет — клиент уйдёт по таймауту. Поздняя запись в журнал
                    # попала бы уже в следующий тест
                    fake._log(self.command, self.path, self.headers, None, 0, ())
                    time.sleep(fake.hang_s)
                    self.close_connection = True
                    return
                status, payload = fake._dispatch(self.command, self.path, self.headers, body)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- обработка ---

    def _log(
        self, method: str, raw_path: str, headers: Any, body: Any, status: int, violations: tuple[str, ...]
    ) -> None:
        parts = urlsplit(raw_path)
        logged = LoggedRequest(
            method=method,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            headers={key.lower(): value for key, value in headers.items()},
            json_body=body,
            status=status,
            violations=violations,
        )
        with self._lock:
            self.requests.append(logged)

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        violations: list[str] = []
        parsed: Any = None
        if isinstance(self.outage, int):
            self._log(method, raw_path, headers, None, self.outage, ())
            return self.outage, {"error": "Service Unavailable", "details": {}, "timestamp": _now()}
        try:
            status, payload, parsed = self._checked(method, raw_path, headers, body, violations)
        except _Refused as refused:
            status = refused.status
            payload = {"error": refused.error, "details": refused.details, "timestamp": _now()}
        found = _operation(method, unquote(urlsplit(raw_path).path))
        if found is not None:
            schema = found[0].response_schema(status)
            if schema is not None:
                violations += [
                    f"fake response {status}: {e}" for e in schema_errors(schema, payload, strict=False)
                ]
        self._log(method, raw_path, headers, parsed, status, tuple(violations))
        return status, payload

    def _checked(
        self, method: str, raw_path: str, headers: Any, body: bytes, violations: list[str]
    ) -> tuple[int, Any, Any]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        found = _operation(method, path)
        if found is None:
            violations.append("no such operation in the spec")
            raise _Refused(404, f"No endpoint {method} {path}")
        operation, path_params = found

        for name in operation.security_headers():
            given = headers.get(name)
            if given is None:
                violations.append(f"missing {name} header")
                raise _Refused(401, "Unauthorized")
            if given != self.api_key:
                raise _Refused(401, "Unauthorized")

        declared = {p["name"]: p for p in operation.definition.get("parameters", [])}
        for name, value in path_params.items():
            errors = schema_errors(declared[name]["schema"], value, strict=False)
            if errors:
                violations.append(f"path parameter {name}: {errors}")
                raise _Refused(400, "Input fields are invalid", {name: errors[0]})
        for name in parse_qs(parts.query):
            if name not in declared or declared[name]["in"] != "query":
                violations.append(f"unknown query parameter {name}")

        parsed: Any = None
        schema = operation.body_schema()
        if schema is None:
            if body:
                violations.append("this operation takes no body")
        else:
            if headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                violations.append(f"Content-Type is {headers.get('Content-Type')!r}, not application/json")
                raise _Refused(415, "Unsupported Media Type")
            try:
                parsed = json.loads(body)
            except ValueError:
                violations.append("body is not JSON")
                raise _Refused(400, "Malformed JSON") from None
            errors = schema_errors(schema, parsed, strict=True)
            missing = sorted(operation.required_fields() - set(parsed if isinstance(parsed, dict) else {}))
            errors += [f"{name}: required (present in every example of the spec)" for name in missing]
            if errors:
                violations.extend(errors)
                raise _Refused(400, "Input fields are invalid", {str(i): e for i, e in enumerate(errors)})

        with self._lock:
            status, payload = self._answer(operation, path_params, parsed)
        return status, payload, parsed

    def _answer(self, operation: Operation, params: dict[str, str], body: Any) -> tuple[int, Any]:
        key = (operation.method, operation.template)
        if key == ("POST", "/api/v2/invoice"):
            return self._invoice_create(body)
        if key == ("GET", "/api/v2/invoices/{id}"):
            return self._contract_get(params["id"])
        raise _Refused(501, f"the fake does not implement {operation.method} {operation.template}")

    def _invoice_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        prices = self.offers.get(body["offerId"])
        if prices is None:
            raise _Refused(404, f"Product with offer id = '{body['offerId']}' not found")
        if body["currency"] not in prices:
            raise _Refused(400, f"Offer has no price in {body['currency']}")
        contract = Contract(
            str(uuid.uuid4()), body["offerId"], body["email"], body["currency"], prices[body["currency"]]
        )
        self.contracts[contract.id] = contract
        return 201, {
            "id": contract.id,
            "status": "new",
            "amountTotal": {"currency": contract.currency, "amount": round(contract.amount)},
            "paymentUrl": CHECKOUT_URL.format(id=contract.id),
        }

    def _contract_get(self, contract_id: str) -> tuple[int, Any]:
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise _Refused(404, f"Invoice with such id = '{contract_id}' not found")
        if contract.refused_with:
            raise _Refused(contract.refused_with, "Access denied")
        answer: dict[str, Any] = {
            "id": contract.id,
            "type": "INVOICE",
            "datetime": contract.created_at,
            "status": contract.status,
            "buyer": {"email": contract.email},
            "product": {"name": "Tokens", "offer": contract.offer_id},
        }
        if contract.receipt:
            answer["receipt"] = {"amount": contract.amount, "currency": contract.currency, "fee": 0.0}
        return 200, answer


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
