"""A loopback simulator of the host product's API (Teamleader Focus style, ``shared/reference/host-api.md``).

:class:`HostSandbox` is both the state (accounts -> departments -> relations, tax rates, product categories,
invoices, credit notes, incoming documents, webhooks) and a werkzeug WSGI app serving it: serve it with
``httpx.WSGITransport(app=sandbox)`` in tests or :class:`connector.sandbox.server.LoopbackServer` for real
HTTP.

Wire rules (host-api.md §1): every endpoint is ``POST /<resource>.<action>`` with a JSON body (an empty body
is read as ``{}``) and ``Authorization: Bearer <token>``; success bodies put the payload under ``data``;
write actions answer ``204`` (``incomingInvoices.registerPayment``: ``201 {"data": {type, id}}``); errors are
``{"errors": [{"title": ...}]}`` with 400 (bad input; the title names the field), 401 (missing / unknown
token), 404 (unknown endpoint or id), 405 (not POST), 429 (rate limit). Money is written as JSON numbers
from ``Decimal`` and request bodies are parsed with ``parse_float=Decimal`` (never float).

Rate limit (§1 "Rate limit"): ``rate_limit`` (200) requests per sliding ``window_seconds`` (60) per account;
every authenticated response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (ISO 8601, rounded up to the second: when the oldest counted request leaves the
window). Requests refused with 429 are not counted. Time comes from :func:`connector.clock.get_clock`
(or the ``clock`` given), so a :class:`~connector.clock.ScaledClock` shortens the minute.

Everything the public API lacks but the product has inside is listed in :data:`HOST_EXTENSIONS` and
implemented in the section "Host product extensions" at the end of this module; ``HostSandbox(
extensions=False)`` serves the public API only (extension fields left out, the extension endpoint 404).

Choices where host-api.md is silent (see each handler too): unknown ids anywhere in a request -> 404
(``filter.ids`` only filters); unknown filter keys are ignored; ``updated_since`` is inclusive;
``creditNotes.list`` takes no ``sort`` and returns credit-note date, then number, ascending; credit notes
have status ``booked`` (the only documented value); customer numbers are one sequence per account
("1", "2", ...) shared by companies and contacts.
"""

from __future__ import annotations

import copy
import math
import random
import re
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.clock import Clock, get_clock
from connector.host.mapping import decode_json, encode_json, percentage_allowances
from connector.money import ZERO, round_money, to_decimal

API_VERSION = "2023-09-26"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100  # third-party claim (host-api.md §1, unconfirmed); enforced here

INVOICE_STATUSES = ("draft", "outstanding", "matched")
REVIEW_STATUSES = ("pending", "approved", "refused")
BOOKKEEPING_STATUSES = ("not_sent", "sent")
PAYMENT_STATUSES = ("unknown", "paid", "partially_paid", "not_paid")
INCOMING_KINDS = ("incomingInvoice", "incomingCreditNote")

WEBHOOK_EVENT_TYPES: frozenset[str] = frozenset(
    [
        *(
            f"invoice.{e}"
            for e in (
                "drafted booked updated deleted sent paymentRegistered paymentRemoved "
                "peppolSubmissionSucceeded peppolSubmissionFailed"
            ).split()
        ),
        *(
            f"creditNote.{e}"
            for e in "booked updated deleted sent peppolSubmissionSucceeded peppolSubmissionFailed".split()
        ),
        *(
            f"{subject}.{e}"
            for subject in ("incomingInvoice", "incomingCreditNote", "receipt")
            for e in (
                "added approved refused updated deleted bookkeepingSubmissionSucceeded bookkeepingSubmissionFailed"
            ).split()
        ),
        *(f"company.{e}" for e in ("added", "updated", "deleted")),
        *(
            f"contact.{e}"
            for e in "added updated deleted linkedToCompany unlinkedFromCompany updatedLinkToCompany".split()
        ),
        "account.deactivated",
        "account.deleted",
        "user.deactivated",
    ]
)
"""Webhook event types of host-api.md §9; ``webhooks.register`` refuses others with 400."""


class ApiError(Exception):
    """An API error answer: HTTP ``status`` and the ``title`` of the single ``errors[]`` entry."""

    def __init__(self, status: int, title: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title


# --------------------------------------------------------------------------------------------- records


@dataclass
class _Record:
    """A department, relation, tax rate or product category: public wire fields + extension fields."""

    account_id: str
    data: dict[str, Any]
    ext: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.data["id"]


@dataclass
class _Line:
    quantity: Decimal
    unit_price: Decimal
    tax_rate_id: str
    net: Decimal  # total.tax_exclusive
    before: Decimal  # total.tax_exclusive_before_discount
    description: str = ""
    extended_description: str | None = None
    section: str = ""
    discount: Decimal | None = None  # line discount percentage 0-100
    product_category_id: str | None = None
    ledger_account_number: str | None = None  # extension


@dataclass
class _Doc:
    """An outgoing invoice (``kind`` "invoice") or credit note ("creditNote")."""

    id: str
    kind: str
    account_id: str
    department_id: str
    number: str | None
    date: str | None
    status: str
    currency: str
    customer: tuple[str, str]
    invoicee: dict[str, Any]
    lines: list[_Line]
    discounts: list[dict[str, Any]]
    charges: list[dict[str, Any]]  # extension
    total: dict[str, Any]  # tax_exclusive(+_before_discount), tax_inclusive(+_before_discount), taxes, payable
    created_at: str
    updated_at: str
    due_on: str | None = None
    exchange: dict[str, Any] | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    paid: bool = False
    paid_at: str | None = None
    sent: bool = False
    purchase_order_number: str | None = None
    payment_reference: str | None = None
    note: str | None = None
    delivery_date: str | None = None
    invoice_id: str | None = None  # credit notes: the credited invoice
    booking_number: str | None = None  # extension
    source_file: str | None = None  # extension

    @property
    def due(self) -> Decimal:
        return self.total["payable"] - sum((p["payment"] for p in self.payments), ZERO)


@dataclass
class _Incoming:
    """An incoming invoice / credit note of the Expenses module (host-api.md §7)."""

    id: str
    kind: str  # incomingInvoice | incomingCreditNote
    account_id: str
    department_id: str
    title: str
    currency: str
    origin: dict[str, Any]
    supplier: tuple[str, str] | None
    document_number: str | None
    document_date: str | None
    due_date: str | None
    tax_exclusive: Decimal | None
    tax_inclusive: Decimal | None
    review_status: str
    bookkeeping_status: str
    created_at: str
    updated_at: str
    file_id: str | None = None
    payment_reference: str | None = None
    iban_number: str | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    booking_number: str | None = None  # extension
    source_file: str | None = None  # extension

    @property
    def paid_amount(self) -> Decimal:
        return sum((p["payment"] for p in self.payments), ZERO)

    @property
    def payment_status(self) -> str:
        if self.tax_inclusive is None:
            return "unknown"
        if self.payments and self.paid_amount >= self.tax_inclusive:
            return "paid"
        if self.payments and self.kind == "incomingInvoice":
            return "partially_paid"
        return "not_paid"


@dataclass
class _Account:
    id: str
    token: str
    customer_seq: int = 0
    doc_seq: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    webhooks: dict[str, set[str]] = field(default_factory=dict)
    hits: deque[float] = field(default_factory=deque)


# ----------------------------------------------------------------------------------------- input parsing


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _In:
    """A JSON object from the request, with typed getters raising 400 that name the field's path."""

    def __init__(self, data: Any, path: str = "") -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ApiError(400, f"{path or 'The request body'} must be a JSON object")
        self.data = data
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def obj(self, key: str, *, required: bool = False) -> _In:
        if required and not self.has(key):
            raise ApiError(400, f"{self.name(key)} is required")
        return _In(self.data.get(key), self.name(key))

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise ApiError(400, f"{self.name(key)} is required")
            return None
        if not isinstance(value, str) or (required and not value):
            raise ApiError(400, f"{self.name(key)} must be a non-empty string")
        return value

    def texts(self, key: str) -> list[str] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(400, f"{self.name(key)} must be an array of strings")
        return value

    def choice(self, key: str, allowed: Sequence[str], *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is not None and value not in allowed:
            raise ApiError(400, f"{self.name(key)} must be one of {', '.join(allowed)}")
        return value

    def choices(self, key: str, allowed: Sequence[str]) -> list[str] | None:
        values = self.texts(key)
        for value in values or []:
            if value not in allowed:
                raise ApiError(400, f"{self.name(key)} must contain only {', '.join(allowed)}")
        return values

    def date(self, key: str, *, required: bool = False) -> date | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            if not _DATE_RE.match(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise ApiError(400, f"{self.name(key)} must be a valid date (YYYY-MM-DD)") from None

    def timestamp(self, key: str, *, required: bool = False) -> datetime | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            result = datetime.fromisoformat(value)
        except ValueError:
            result = None
        if result is None or result.tzinfo is None:
            raise ApiError(400, f"{self.name(key)} must be an ISO 8601 timestamp with offset")
        return result

    def amount(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise ApiError(400, f"{self.name(key)} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise ApiError(400, f"{self.name(key)} must be a number")
        return Decimal(value)

    def ref(self, key: str, types: Sequence[str], *, required: bool = False) -> tuple[str, str] | None:
        if not self.has(key):
            if required:
                raise ApiError(400, f"{self.name(key)} is required")
            return None
        ref = self.obj(key)
        kind = ref.choice("type", types, required=True)
        ref_id = ref.text("id", required=True)
        assert kind is not None and ref_id is not None
        return kind, ref_id

    def page(self) -> tuple[int, int]:
        page = self.obj("page")
        size, number = page.data.get("size", DEFAULT_PAGE_SIZE), page.data.get("number", 1)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"page.size must be an integer from 1 to {MAX_PAGE_SIZE}")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ApiError(400, "page.number must be an integer of at least 1")
        return size, number

    def sort(self, allowed: Sequence[str], default_field: str, default_order: str) -> tuple[str, str]:
        """The first ``sort[]`` entry as (field, order); only one sort key is honoured."""
        value = self.data.get("sort")
        if value is None:
            return default_field, default_order
        if not isinstance(value, list) or not value or not isinstance(value[0], Mapping):
            raise ApiError(400, "sort must be an array of {field, order}")
        entry = _In(value[0], "sort[0]")
        sort_field = entry.choice("field", allowed, required=True)
        order = entry.choice("order", ("asc", "desc")) or "asc"
        assert sort_field is not None
        return sort_field, order


def _paginate(rows: list[Any], size: int, number: int) -> list[Any]:
    return rows[(number - 1) * size : number * size]


def _natural(text: str | None) -> tuple[Any, ...]:
    """Sort key for document numbers such as "2025 / 12" (digits compared as numbers)."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", text or ""))


def _norm_vat(value: str | None) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value or "").upper()


def _dec(value: Any, name: str) -> Decimal:
    """Python-side set-up amounts: str / int / Decimal (floats refused, as in connector.money)."""
    return to_decimal(value, name)


# ------------------------------------------------------------------------------------------ the sandbox


class HostSandbox:
    """The host product: state plus a WSGI app (``sandbox(environ, start_response)``).

    ``rate_limit`` requests per sliding ``window_seconds`` per account (host-api.md §1); ``clock`` defaults
    to the process clock (read on every request); ``extensions`` False serves the public API only;
    ``seed`` makes ids reproducible; ``webhook_sender(url, payload)`` is called (outside the sandbox's
    lock) for each webhook delivery, which is also appended to :attr:`deliveries`.

    :attr:`calls` counts served requests: ``{"reads": n, "writes": n}`` (``.list`` / ``.info`` are reads),
    :attr:`calls_by_action` per endpoint. Requests refused with 401 / 429 / 404-endpoint are not counted.

    Set-up and test helpers (Python side, not counted, not rate limited) raise ``KeyError`` for unknown
    ids and ``ValueError`` for bad values.
    """

    def __init__(
        self,
        *,
        rate_limit: int = 200,
        window_seconds: float = 60.0,
        clock: Clock | None = None,
        extensions: bool = True,
        seed: int | None = None,
        webhook_sender: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.rate_limit = rate_limit
        self.window_seconds = window_seconds
        self.extensions = extensions
        self.webhook_sender = webhook_sender
        self.calls: dict[str, int] = {"reads": 0, "writes": 0}
        self.calls_by_action: Counter[str] = Counter()
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        self._clock = clock
        self._rng = random.Random(seed) if seed is not None else None
        self._lock = threading.RLock()
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, str] = {}
        self._departments: dict[str, _Record] = {}
        self._tax_rates: dict[str, _Record] = {}
        self._categories: dict[str, _Record] = {}
        self._companies: dict[str, _Record] = {}
        self._contacts: dict[str, _Record] = {}
        self._docs: dict[str, _Doc] = {}
        self._incoming: dict[str, _Incoming] = {}
        self._files: dict[str, dict[str, Any]] = {}  # id -> {name, mime_type, content, account_id, token}
        self._base_url = "http://localhost/"
        routes = dict(_ROUTES)
        if extensions:
            routes.update(_EXTENSION_ROUTES)
        self._routes = routes
        self._url_map = Map([Rule(f"/{name}", endpoint=name, methods=["POST"]) for name in routes])

    # ------------------------------------------------------------------ helpers

    @property
    def clock(self) -> Clock:
        """The clock in use (the one given, else the process clock at this moment)."""
        return self._clock or get_clock()

    def _now(self) -> str:
        return self.clock.utcnow().replace(microsecond=0).isoformat()

    def _new_id(self) -> str:
        if self._rng is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    @contextmanager
    def _mutating(self) -> Iterator[None]:
        """Hold the lock, then deliver the webhooks the change queued once it is released."""
        with self._lock:
            yield
        self._flush_webhooks()

    def _emit(self, account_id: str, event: str, subject_type: str, subject_id: str) -> None:
        account = self._accounts[account_id]
        payload = {
            "type": event,
            "subject": {"type": subject_type, "id": subject_id},
            "account": {"type": "account", "id": account_id},
        }
        for url, types in sorted(account.webhooks.items()):
            if event in types:
                self._pending.append((url, copy.deepcopy(payload)))

    def _flush_webhooks(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self.deliveries.extend(pending)
        if self.webhook_sender is not None:
            for url, payload in pending:
                self.webhook_sender(url, payload)

    def _account(self, account_id: str) -> _Account:
        try:
            return self._accounts[account_id]
        except KeyError:
            raise KeyError(f"unknown account {account_id}") from None

    def _department(self, department_id: str) -> _Record:
        try:
            return self._departments[department_id]
        except KeyError:
            raise KeyError(f"unknown department {department_id}") from None

    def _relation(self, kind: str, relation_id: str) -> _Record:
        table = {"company": self._companies, "contact": self._contacts}.get(kind)
        if table is None or relation_id not in table:
            raise KeyError(f"unknown {kind} {relation_id}")
        return table[relation_id]

    def _next_customer_number(self, account: _Account) -> str:
        account.customer_seq += 1
        return str(account.customer_seq)

    # ------------------------------------------------------------------ set-up (Python side)

    def add_account(self, token: str) -> str:
        """A new account whose API access token is ``token``; returns the account id."""
        with self._mutating():
            if not token or token in self._tokens:
                raise ValueError("token must be non-empty and unique")
            account = _Account(id=self._new_id(), token=token)
            self._accounts[account.id] = account
            self._tokens[token] = account.id
            return account.id

    def add_department(
        self,
        account_id: str,
        name: str,
        vat_number: str | None,
        currency: str = "EUR",
        *,
        email: str | None = None,
        address: Mapping[str, Any] | None = None,
        iban: str | None = None,
        bic: str | None = None,
        status: str = "active",
        department_id: str | None = None,
    ) -> str:
        """A company entity (department, host-api.md §3) of the account; returns its id (``department_id``
        when given: a test's fixed id; ``ValueError`` when it is taken)."""
        with self._mutating():
            self._account(account_id)
            if department_id is not None and department_id in self._departments:
                raise ValueError(f"department {department_id} exists already")
            dept_id = department_id or self._new_id()
            self._departments[dept_id] = _Record(
                account_id,
                {
                    "id": dept_id,
                    "name": name,
                    "vat_number": vat_number,
                    "currency": currency,
                    "emails": [{"type": "primary", "email": email}] if email else [],
                    "status": status,
                    "address": _address(address),
                    "telephones": [],
                    "website": None,
                    "iban": iban,
                    "bic": bic,
                    "fiscal_regime": None,
                    "created_at": self._now(),
                },
            )
            return dept_id

    def add_tax_rate(
        self, department_id: str, description: str, rate: Decimal | str | int, *, category: str | None = None
    ) -> str:
        """A tax rate of the department; ``rate`` is a fraction (``"0.21"``) as the API gives it,
        ``category`` the UNCL5305 code (extension). Returns its id."""
        with self._mutating():
            dept = self._department(department_id)
            fraction = _dec(rate, "rate")
            if not 0 <= fraction < 1:
                raise ValueError("rate is a fraction between 0 and 1 (0.21 = 21 %)")
            rate_id = self._new_id()
            self._tax_rates[rate_id] = _Record(
                dept.account_id,
                {
                    "id": rate_id,
                    "description": description,
                    "rate": fraction,
                    "department": {"type": "department", "id": department_id},
                },
                {"category": category},
            )
            return rate_id

    def add_product_category(self, account_id: str, name: str, ledgers: Mapping[str, str] | None = None) -> str:
        """A product category; ``ledgers`` maps department id -> ledger account number (host-api.md §8)."""
        with self._mutating():
            self._account(account_id)
            for dept_id in ledgers or {}:
                self._department(dept_id)
            cat_id = self._new_id()
            self._categories[cat_id] = _Record(
                account_id,
                {
                    "id": cat_id,
                    "name": name,
                    "ledgers": [
                        {"department": {"type": "department", "id": d}, "ledger_account_number": str(n)}
                        for d, n in (ledgers or {}).items()
                    ],
                },
            )
            return cat_id

    def add_company(
        self,
        account_id: str,
        name: str,
        *,
        vat_number: str | None = None,
        national_identification_number: str | None = None,
        email: str | None = None,
        address: Mapping[str, Any] | None = None,
        vat_type: str | None = None,
        customer_number: str | None = None,
        iban: str | None = None,
        language: str | None = None,
        electronic_invoicing_address: str | None = None,
        tags: Sequence[str] = (),
        external_ids: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """A company (host-api.md §6); ``address`` keys ``line_1, postal_code, city, country``.
        ``vat_type``, ``customer_number`` and ``external_ids`` (``[{department_id, tool, external_id}]``)
        are extensions; the customer number is assigned from the account's sequence when not given.
        Returns the id."""
        with self._mutating():
            return self._insert_company(
                self._account(account_id), name, vat_number=vat_number,
                national_identification_number=national_identification_number, email=email, address=address,
                vat_type=vat_type, customer_number=customer_number, iban=iban, language=language,
                electronic_invoicing_address=electronic_invoicing_address, tags=tags, external_ids=external_ids,
            )

    def _insert_company(
        self,
        account: _Account,
        name: str,
        *,
        vat_number: str | None = None,
        national_identification_number: str | None = None,
        email: str | None = None,
        address: Mapping[str, Any] | None = None,
        vat_type: str | None = None,
        customer_number: str | None = None,
        iban: str | None = None,
        language: str | None = None,
        electronic_invoicing_address: str | None = None,
        tags: Sequence[str] = (),
        external_ids: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """Store a new company and queue ``company.added`` (the caller holds the lock and flushes)."""
        account_id = account.id
        company_id = self._new_id()
        now = self._now()
        self._companies[company_id] = _Record(
            account_id,
            {
                "id": company_id,
                "name": name,
                "status": "active",
                "business_type": None,
                "vat_number": vat_number,
                "national_identification_number": national_identification_number,
                "emails": [{"type": "primary", "email": email}] if email else [],
                "telephones": [],
                "website": None,
                "addresses": [{"type": "invoicing", "address": _address(address), "addressee": None}]
                if address
                else [],
                "iban": iban,
                "bic": None,
                "language": language,
                "preferred_currency": None,
                "payment_term": None,
                "invoicing_preferences": {"electronic_invoicing_address": electronic_invoicing_address},
                "responsible_user": None,
                "remarks": None,
                "tags": list(tags),
                "custom_fields": [],
                "marketing_mails_consent": False,
                "added_at": now,
                "updated_at": now,
                "web_url": f"https://focus.teamleader.eu/company_detail.php?id={company_id}",
            },
            {
                "vat_type": vat_type,
                "customer_number": customer_number or self._next_customer_number(account),
                "external_ids": [dict(link) for link in external_ids],
            },
        )
        self._emit(account_id, "company.added", "company", company_id)
        return company_id

    def add_contact(
        self,
        account_id: str,
        first_name: str | None,
        last_name: str,
        *,
        email: str | None = None,
        vat_number: str | None = None,
        address: Mapping[str, Any] | None = None,
        vat_type: str | None = "private_person",
        customer_number: str | None = None,
    ) -> str:
        """A contact (person, host-api.md §6), with the same extensions as :meth:`add_company`."""
        with self._mutating():
            account = self._account(account_id)
            contact_id = self._new_id()
            now = self._now()
            self._contacts[contact_id] = _Record(
                account_id,
                {
                    "id": contact_id,
                    "first_name": first_name,
                    "last_name": last_name,
                    "salutation": None,
                    "vat_number": vat_number,
                    "national_identification_number": None,
                    "emails": [{"type": "primary", "email": email}] if email else [],
                    "telephones": [],
                    "addresses": [{"type": "invoicing", "address": _address(address), "addressee": None}]
                    if address
                    else [],
                    "iban": None,
                    "bic": None,
                    "language": None,
                    "payment_term": None,
                    "invoicing_preferences": {"electronic_invoicing_address": None},
                    "gender": "unknown",
                    "birthdate": None,
                    "companies": [],
                    "tags": [],
                    "custom_fields": [],
                    "added_at": now,
                    "updated_at": now,
                    "web_url": f"https://focus.teamleader.eu/contact_detail.php?id={contact_id}",
                },
                {
                    "vat_type": vat_type,
                    "customer_number": customer_number or self._next_customer_number(account),
                    "external_ids": [],
                },
            )
            self._emit(account_id, "contact.added", "contact", contact_id)
            return contact_id

    def add_invoice(
        self,
        department_id: str,
        *,
        customer: tuple[str, str],
        invoice_date: date | str | None,
        lines: Sequence[Mapping[str, Any]],
        number: str | None = None,
        status: str = "outstanding",
        due_on: date | str | None = None,
        currency: str | None = None,
        currency_exchange_rate: Mapping[str, Any] | None = None,
        discounts: Sequence[Mapping[str, Any]] = (),
        charges: Sequence[Mapping[str, Any]] = (),
        total: Mapping[str, Any] | None = None,
        payment_reference: str | None = None,
        purchase_order_number: str | None = None,
        note: str | None = None,
        source_file: str | None = None,
        booking_number: str | None = None,
    ) -> str:
        """An outgoing invoice in the department; returns its id.

        - ``customer``: ``("company" | "contact", id)``; the invoicee is copied from it.
        - ``lines``: mappings with ``quantity`` (default 1), ``unit_price`` (excl. VAT), ``tax_rate_id``,
          optional ``description``, ``extended_description``, ``section`` (title), ``discount`` (percent),
          ``net_amount`` (line total excl. VAT; default ``round(quantity x unit_price x (1 - discount/100), 2)``),
          ``product_category_id``, ``ledger_account_number`` (extension).
        - ``discounts``: ``{"type": "percentage", "value", "description"}`` or (extension)
          ``{"type": "amount", "value", "description", "tax_rate_id"}``; ``charges`` (extension):
          ``{"value", "description", "tax_rate_id"}``.
        - ``total``: optional overrides of the computed totals (keys ``tax_exclusive``, ``tax_inclusive``,
          ``payable``, ``taxes`` = ``[{rate, taxable, tax, tax_rate_id?}]``: the document's own VAT
          breakdown, per tax rate when ``tax_rate_id`` is given); otherwise totals are computed: per tax
          rate id line totals - discounts + charges, ``tax = round(taxable x rate, 2)`` per numeric rate
          (see :data:`HOST_EXTENSIONS` ``total.taxes[].tax_rate``).
        - ``number``: default ``"<year> / <n>"`` per department and year; ``status``: draft | outstanding
          | matched (matched = paid in full now); ``currency`` defaults to the department's;
          ``currency_exchange_rate`` ``{from, to, rate}``.
        Amounts are str / int / Decimal (floats refused).
        """
        return self._add_document(
            "invoice",
            department_id,
            customer=customer,
            doc_date=invoice_date,
            lines=lines,
            number=number,
            status=status,
            due_on=due_on,
            currency=currency,
            exchange=currency_exchange_rate,
            discounts=discounts,
            charges=charges,
            total=total,
            payment_reference=payment_reference,
            purchase_order_number=purchase_order_number,
            note=note,
            source_file=source_file,
            booking_number=booking_number,
            invoice_id=None,
        )

    def add_credit_note(
        self,
        department_id: str,
        *,
        customer: tuple[str, str],
        credit_note_date: date | str,
        lines: Sequence[Mapping[str, Any]],
        number: str | None = None,
        invoice_id: str | None = None,
        currency: str | None = None,
        currency_exchange_rate: Mapping[str, Any] | None = None,
        discounts: Sequence[Mapping[str, Any]] = (),
        charges: Sequence[Mapping[str, Any]] = (),
        total: Mapping[str, Any] | None = None,
        source_file: str | None = None,
        booking_number: str | None = None,
    ) -> str:
        """An outgoing credit note (status ``booked``, host-api.md §5), arguments as :meth:`add_invoice`;
        amounts positive. ``number`` defaults to ``"<year>/<n>"``. No payment reference: §5 has none.
        Returns its id."""
        if invoice_id is not None and (invoice_id not in self._docs or self._docs[invoice_id].kind != "invoice"):
            raise KeyError(f"unknown invoice {invoice_id}")
        return self._add_document(
            "creditNote",
            department_id,
            customer=customer,
            doc_date=credit_note_date,
            lines=lines,
            number=number,
            status="booked",
            due_on=None,
            currency=currency,
            exchange=currency_exchange_rate,
            discounts=discounts,
            charges=charges,
            total=total,
            payment_reference=None,
            purchase_order_number=None,
            note=None,
            source_file=source_file,
            booking_number=booking_number,
            invoice_id=invoice_id,
        )

    def _add_document(
        self,
        kind: str,
        department_id: str,
        *,
        customer: tuple[str, str],
        doc_date: date | str | None,
        lines: Sequence[Mapping[str, Any]],
        number: str | None,
        status: str,
        due_on: date | str | None,
        currency: str | None,
        exchange: Mapping[str, Any] | None,
        discounts: Sequence[Mapping[str, Any]],
        charges: Sequence[Mapping[str, Any]],
        total: Mapping[str, Any] | None,
        payment_reference: str | None,
        purchase_order_number: str | None,
        note: str | None,
        source_file: str | None,
        booking_number: str | None,
        invoice_id: str | None,
    ) -> str:
        with self._mutating():
            dept = self._department(department_id)
            account = self._accounts[dept.account_id]
            if kind == "invoice" and status not in INVOICE_STATUSES:
                raise ValueError(f"status must be one of {INVOICE_STATUSES}")
            relation = self._relation(*customer)
            if relation.account_id != account.id:
                raise KeyError(f"{customer[0]} {customer[1]} belongs to another account")
            doc_date_s = _iso_date(doc_date)
            if doc_date_s is None and status != "draft":
                raise ValueError("a booked document needs a date")
            rates = self._department_rates(department_id)

            def _rate_id(value: Any, name: str) -> str:
                if value not in rates:
                    raise ValueError(f"{name}: tax rate {value!r} is not a tax rate of the department")
                return value

            doc_lines: list[_Line] = []
            for i, spec in enumerate(lines):
                quantity = _dec(spec.get("quantity", 1), f"lines[{i}].quantity")
                price = _dec(spec["unit_price"], f"lines[{i}].unit_price")
                discount = spec.get("discount")
                discount = None if discount is None else _dec(discount, f"lines[{i}].discount")
                net = spec.get("net_amount")
                if net is None:
                    net = round_money(quantity * price * (1 - (discount or ZERO) / 100))
                net = _dec(net, f"lines[{i}].net_amount")
                category = spec.get("product_category_id")
                if category is not None and category not in self._categories:
                    raise KeyError(f"unknown product category {category}")
                doc_lines.append(
                    _Line(
                        quantity=quantity,
                        unit_price=price,
                        tax_rate_id=_rate_id(spec.get("tax_rate_id"), f"lines[{i}].tax_rate_id"),
                        net=net,
                        before=round_money(quantity * price) if discount else net,
                        description=spec.get("description") or "",
                        extended_description=spec.get("extended_description"),
                        section=spec.get("section") or "",
                        discount=discount,
                        product_category_id=category,
                        ledger_account_number=spec.get("ledger_account_number"),
                    )
                )
            doc_discounts: list[dict[str, Any]] = []
            for i, spec in enumerate(discounts):
                entry: dict[str, Any] = {
                    "type": spec.get("type", "percentage"),
                    "value": _dec(spec["value"], f"discounts[{i}].value"),
                    "description": spec.get("description") or "",
                }
                if entry["type"] == "amount":
                    entry["tax"] = {"type": "taxRate", "id": _rate_id(_tax_id(spec), f"discounts[{i}].tax_rate_id")}
                elif entry["type"] != "percentage":
                    raise ValueError(f"discounts[{i}].type must be percentage or amount")
                doc_discounts.append(entry)
            doc_charges = [
                {
                    "value": _dec(spec["value"], f"charges[{i}].value"),
                    "description": spec.get("description") or "",
                    "tax": {"type": "taxRate", "id": _rate_id(_tax_id(spec), f"charges[{i}].tax_rate_id")},
                }
                for i, spec in enumerate(charges)
            ]
            totals = _compute_totals(doc_lines, doc_discounts, doc_charges, rates)
            for key, value in (total or {}).items():
                if key == "taxes":
                    totals["taxes"] = [
                        {
                            "rate": _dec(t["rate"], "total.taxes[].rate"),
                            "taxable": _dec(t["taxable"], "total.taxes[].taxable"),
                            "tax": _dec(t["tax"], "total.taxes[].tax"),
                            "tax_rate_id": (
                                None if t.get("tax_rate_id") is None else _rate_id(t["tax_rate_id"], "total.taxes[].tax_rate_id")
                            ),
                        }
                        for t in value
                    ]
                elif key in ("tax_exclusive", "tax_inclusive", "payable"):
                    totals[key] = _dec(value, f"total.{key}")
                else:
                    raise ValueError(f"total.{key} cannot be set")
            if total and "payable" not in total:
                totals["payable"] = totals["tax_inclusive"]
            doc_currency = currency or dept.data["currency"]
            if number is None and status != "draft":
                year = int(doc_date_s[:4]) if doc_date_s else 0
                account.doc_seq[(kind, department_id, year)] += 1
                seq = account.doc_seq[(kind, department_id, year)]
                number = f"{year} / {seq}" if kind == "invoice" else f"{year}/{seq}"
            if booking_number is not None:
                _check_booking_number(booking_number)
            now = self._now()
            company = relation.data
            doc = _Doc(
                id=self._new_id(),
                kind=kind,
                account_id=account.id,
                department_id=department_id,
                number=number,
                date=doc_date_s,
                status=status,
                currency=doc_currency,
                customer=(customer[0], customer[1]),
                invoicee={
                    "name": company.get("name")
                    or " ".join(p for p in (company.get("first_name"), company.get("last_name")) if p),
                    "vat_number": company.get("vat_number"),
                    "email": next((e["email"] for e in company.get("emails") or []), None),
                    "national_identification_number": company.get("national_identification_number"),
                },
                lines=doc_lines,
                discounts=doc_discounts,
                charges=doc_charges,
                total=totals,
                created_at=now,
                updated_at=now,
                due_on=_iso_date(due_on),
                exchange=_exchange(exchange),
                payment_reference=payment_reference,
                purchase_order_number=purchase_order_number,
                note=note,
                invoice_id=invoice_id,
                booking_number=booking_number,
                source_file=source_file,
            )
            if status == "matched":
                doc.payments.append({"paid_at": now, "payment": doc.total["payable"]})
                doc.paid, doc.paid_at = True, now
            self._docs[doc.id] = doc
            if kind == "invoice":
                self._emit(account.id, "invoice.drafted" if status == "draft" else "invoice.booked", kind, doc.id)
            else:
                self._emit(account.id, "creditNote.booked", kind, doc.id)
            return doc.id

    def add_incoming_document(
        self,
        department_id: str,
        *,
        kind: str = "incomingInvoice",
        title: str,
        currency: str = "EUR",
        supplier: tuple[str, str] | None = None,
        document_number: str | None = None,
        document_date: date | str | None = None,
        due_date: date | str | None = None,
        tax_exclusive: Decimal | str | None = None,
        tax_inclusive: Decimal | str | None = None,
        origin: str = "peppolIncomingDocument",
        review_status: str = "pending",
        bookkeeping_status: str = "not_sent",
        payment_reference: str | None = None,
        iban_number: str | None = None,
        source_file: str | None = None,
        file_content: bytes | None = None,
        file_name: str | None = None,
        file_mime_type: str = "application/xml",
    ) -> str:
        """An incoming invoice / credit note in the Expenses module (host-api.md §7); ``origin`` is
        ``user`` or ``peppolIncomingDocument``. ``file_content`` is the original document (the UBL of a
        Peppol document), served by ``files.info`` / ``files.download`` (§7.4). Returns its id."""
        with self._mutating():
            dept = self._department(department_id)
            if kind not in INCOMING_KINDS:
                raise ValueError(f"kind must be one of {INCOMING_KINDS}")
            if review_status not in REVIEW_STATUSES or bookkeeping_status not in BOOKKEEPING_STATUSES:
                raise ValueError("unknown review or bookkeeping status")
            if origin not in ("user", "peppolIncomingDocument"):
                raise ValueError("origin must be user or peppolIncomingDocument")
            if supplier is not None:
                self._relation(*supplier)
            now = self._now()
            doc = _Incoming(
                id=self._new_id(),
                kind=kind,
                account_id=dept.account_id,
                department_id=department_id,
                title=title,
                currency=currency,
                origin={"type": origin, "id": self._new_id() if origin != "user" else None},
                supplier=supplier,
                document_number=document_number,
                document_date=_iso_date(document_date),
                due_date=_iso_date(due_date),
                tax_exclusive=None if tax_exclusive is None else _dec(tax_exclusive, "tax_exclusive"),
                tax_inclusive=None if tax_inclusive is None else _dec(tax_inclusive, "tax_inclusive"),
                review_status=review_status,
                bookkeeping_status=bookkeeping_status,
                created_at=now,
                updated_at=now,
                file_id=self._store_file(dept.account_id, file_name or source_file or f"{document_number or 'document'}.xml", file_mime_type, file_content)
                if file_content is not None
                else self._new_id(),
                payment_reference=payment_reference,
                iban_number=iban_number,
                source_file=source_file,
            )
            self._incoming[doc.id] = doc
            self._emit(dept.account_id, f"{kind}.added", kind, doc.id)
            return doc.id

    def edit_line(self, doc_id: str, index: int, *, net_amount: Decimal | str, unit_price: Decimal | str | None = None) -> None:
        """Edit a booked document as a user allowed to edit booked invoices would (host-api.md §4.4
        ``invoices.updateBooked``): line ``index`` gets a new total excl. VAT; totals are recomputed
        (VAT per rate rounded half-up) and ``updated_at`` moves. ``KeyError`` for an unknown document."""
        with self._mutating():
            doc = self._docs[doc_id]
            line = doc.lines[index]
            line.net = _dec(net_amount, "net_amount")
            line.before = line.net
            line.unit_price = _dec(unit_price, "unit_price") if unit_price is not None else (line.net / line.quantity if line.quantity else line.net)
            line.discount = None
            doc.total = _compute_totals(doc.lines, doc.discounts, doc.charges, self._department_rates(doc.department_id))
            doc.updated_at = self._now()

    def mark_paid(self, invoice_id: str, *, paid_at: datetime | str | None = None) -> None:
        """Register a payment of the invoice's open amount (as the user would); status -> matched."""
        with self._mutating():
            doc = self._docs.get(invoice_id)
            if doc is None or doc.kind != "invoice":
                raise KeyError(f"unknown invoice {invoice_id}")
            when = paid_at.isoformat() if isinstance(paid_at, datetime) else (paid_at or self._now())
            self._register_payment(doc, doc.due, when)

    def _register_payment(self, doc: _Doc, amount: Decimal, when: str) -> None:
        doc.payments.append({"paid_at": when, "payment": amount})
        if doc.due <= 0:
            doc.paid, doc.paid_at, doc.status = True, when, "matched"
        doc.updated_at = self._now()
        self._emit(doc.account_id, "invoice.paymentRegistered", "invoice", doc.id)

    # ------------------------------------------------------------------ readers (Python side)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        """``invoices.info`` data of the invoice (a deep copy, Decimals kept); ``KeyError`` if unknown."""
        return self._info("invoice", invoice_id)

    def credit_note(self, credit_note_id: str) -> dict[str, Any]:
        """``creditNotes.info`` data of the credit note; ``KeyError`` if unknown."""
        return self._info("creditNote", credit_note_id)

    def _info(self, kind: str, doc_id: str) -> dict[str, Any]:
        with self._lock:
            doc = self._docs.get(doc_id)
            if doc is None or doc.kind != kind:
                raise KeyError(f"unknown {kind} {doc_id}")
            return copy.deepcopy(self._render_doc(doc, full=True))

    def booking_number(self, kind: str, doc_id: str) -> str | None:
        """The booking number (extension) of an ``invoice``, ``creditNote``, ``incomingInvoice`` or
        ``incomingCreditNote`` (``invoice`` / ``credit_note`` domain spellings accepted); ``None`` if unset."""
        with self._lock:
            return self._subject(_SUBJECT_ALIASES.get(kind, kind), doc_id).booking_number

    def tax_rates(self, department_id: str) -> list[dict[str, Any]]:
        """The department's tax rates as ``taxRates.list`` rows (with ``category``)."""
        with self._lock:
            return [copy.deepcopy({**r.data, **r.ext}) for r in self._tax_rates.values()
                    if r.data["department"]["id"] == department_id]

    def companies(self, account_id: str) -> list[dict[str, Any]]:
        """The account's companies as ``companies.info`` data (with the extensions)."""
        with self._lock:
            return [copy.deepcopy({**r.data, **r.ext}) for r in self._companies.values() if r.account_id == account_id]

    def contacts(self, account_id: str) -> list[dict[str, Any]]:
        """The account's contacts as ``contacts.info`` data (with the extensions)."""
        with self._lock:
            return [copy.deepcopy({**r.data, **r.ext}) for r in self._contacts.values() if r.account_id == account_id]

    def link_external(self, kind: str, relation_id: str, department_id: str, tool: str, external_id: str | None) -> None:
        """Link (``external_id`` ``None``: unlink) a company or contact to its code in the accounting tool of
        ``department_id`` (extension ``external_ids``, see :data:`HOST_EXTENSIONS`), as an admin typing the
        External ID would."""
        with self._mutating():
            record = self._relation(kind, relation_id)
            self._department(department_id)
            link = {"department_id": department_id, "tool": tool, "external_id": external_id} if external_id else None
            _apply_external_link(record, department_id, link)

    def documents(self, department_id: str | None = None) -> list[dict[str, Any]]:
        """All invoices and credit notes (``.info`` data plus ``"kind"``), in creation order."""
        with self._lock:
            return [
                {"kind": d.kind, **copy.deepcopy(self._render_doc(d, full=True))}
                for d in self._docs.values()
                if department_id is None or d.department_id == department_id
            ]

    def incoming_document(self, doc_id: str) -> dict[str, Any]:
        """``incomingInvoices.info`` / ``incomingCreditNotes.info`` data plus ``bookkeeping_status``."""
        with self._lock:
            doc = self._incoming.get(doc_id)
            if doc is None:
                raise KeyError(f"unknown incoming document {doc_id}")
            return {**self._render_incoming(doc), "bookkeeping_status": doc.bookkeeping_status}

    def _department_rates(self, department_id: str) -> dict[str, Decimal]:
        return {
            r.id: r.data["rate"] for r in self._tax_rates.values() if r.data["department"]["id"] == department_id
        }

    def _subject(self, kind: str, doc_id: str) -> _Doc | _Incoming:
        if kind in INCOMING_KINDS:
            incoming = self._incoming.get(doc_id)
            if incoming is not None and incoming.kind == kind:
                return incoming
        elif kind in ("invoice", "creditNote"):
            doc = self._docs.get(doc_id)
            if doc is not None and doc.kind == kind:
                return doc
        raise KeyError(f"unknown {kind} {doc_id}")

    # ------------------------------------------------------------------ WSGI

    def _store_file(self, account_id: str, name: str, mime_type: str, content: bytes) -> str:
        file_id = self._new_id()
        self._files[file_id] = {"name": name, "mime_type": mime_type, "content": bytes(content), "account_id": account_id, "token": uuid.uuid4().hex}
        return file_id

    def _serve_file(self, request: Request) -> Response:
        """``GET /files/<id>?token=`` — the temporary download location ``files.download`` hands out
        (no bearer: the token in the URL is the credential, like a presigned link)."""
        file_id = request.path.rsplit("/", 1)[-1]
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None or request.args.get("token") != stored["token"]:
                return _error(404, "Unknown or expired file location")
            return Response(stored["content"], status=200, content_type=stored["mime_type"])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The WSGI entry point."""
        request = Request(environ)
        if request.method == "GET" and request.path.startswith("/files/"):
            return self._serve_file(request)(environ, start_response)
        response = self.handle(request)
        self._flush_webhooks()
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Answer one request: auth (401), rate limit (429), routing (404 / 405), body, handler."""
        with self._lock:
            token = _bearer(request.headers.get("Authorization"))
            account_id = self._tokens.get(token or "")
            if account_id is None:
                return _error(401, "Unauthorized: missing or invalid access token")
            account = self._accounts[account_id]
            allowed, headers = self._take_budget(account)
            if not allowed:
                response = _error(429, "Too Many Requests: rate limit of "
                                  f"{self.rate_limit} requests per minute exceeded")
            else:
                response = self._dispatch(account, request)
            response.headers.update(headers)
            response.headers["X-Api-Version"] = API_VERSION
            return response

    def _take_budget(self, account: _Account) -> tuple[bool, dict[str, str]]:
        now = self.clock.now()
        hits = account.hits
        while hits and hits[0] <= now - self.window_seconds:
            hits.popleft()
        allowed = len(hits) < self.rate_limit
        if allowed:
            hits.append(now)
        reset = hits[0] + self.window_seconds if hits else now
        return allowed, {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_limit - len(hits)),
            "X-RateLimit-Reset": datetime.fromtimestamp(math.ceil(reset), UTC).isoformat(),
        }

    def _dispatch(self, account: _Account, request: Request) -> Response:
        self._base_url = request.host_url
        try:
            endpoint, _ = self._url_map.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            status = exc.code or 404
            title = "Method not allowed: use POST" if status == 405 else f"Unknown endpoint {request.path}"
            return _error(status, title)
        handler, write = self._routes[endpoint]
        self.calls["writes" if write else "reads"] += 1
        self.calls_by_action[endpoint] += 1
        try:
            raw = request.get_data()
            try:
                body = decode_json(raw) if raw.strip() else {}
            except ValueError:
                raise ApiError(400, "The request body must be valid JSON") from None
            result = handler(self, account, _In(body))
        except ApiError as exc:
            return _error(exc.status, exc.title)
        if result is None:
            return Response(status=204)
        status, data = result if isinstance(result, tuple) else (200, result)
        return Response(encode_json(data), status=status, content_type="application/json")

    # ------------------------------------------------------------------ rendering

    def _render_record(self, record: _Record) -> dict[str, Any]:
        data = dict(record.data)
        if self.extensions:
            data.update(record.ext)
        return data

    def _render_doc(self, doc: _Doc, *, full: bool) -> dict[str, Any]:
        """``.info`` data (``full``) or a ``.list`` row (host-api.md §4.2 / §4.3 / §5)."""
        cur = doc.currency

        def money(amount: Decimal) -> dict[str, Any]:
            return {"amount": amount, "currency": cur}

        t = doc.total
        taxes = [{"rate": x["rate"], "taxable": money(x["taxable"]), "tax": money(x["tax"])} for x in _taxes_by_rate(t["taxes"])]
        invoicee: dict[str, Any] = {
            "name": doc.invoicee["name"],
            "vat_number": doc.invoicee["vat_number"],
            "customer": {"type": doc.customer[0], "id": doc.customer[1]},
        }
        department = {"type": "department", "id": doc.department_id}
        if doc.kind == "invoice":
            data: dict[str, Any] = {
                "id": doc.id,
                "department": department,
                "invoice_number": doc.number,
                "invoice_date": doc.date,
                "status": doc.status,
                "due_on": doc.due_on,
                "paid": doc.paid,
                "paid_at": doc.paid_at,
                "sent": doc.sent,
                "purchase_order_number": doc.purchase_order_number,
                "payment_reference": doc.payment_reference,
                "note": doc.note,
                "currency_exchange_rate": doc.exchange,
                "delivery_date": doc.delivery_date,
                "on_hold_since": None,
                "created_at": doc.created_at,
                "updated_at": doc.updated_at,
                "document_template": None,
                "file": None,
                "deal": None,
                "project": None,
                "peppol_status": None,
                "invoicee": invoicee,
                "total": {
                    "tax_exclusive": money(t["tax_exclusive"]),
                    "tax_inclusive": money(t["tax_inclusive"]),
                    "payable": money(t["payable"]),
                    "taxes": taxes,
                    "due": money(doc.due),
                },
            }
            if not full:
                data["web_url"] = f"https://focus.teamleader.eu/invoice_detail.php?id={doc.id}"
                data["subscription"] = None
        else:
            data = {
                "id": doc.id,
                "department": department,
                "credit_note_number": doc.number,
                "credit_note_date": doc.date,
                "status": doc.status,
                "invoice": {"type": "invoice", "id": doc.invoice_id} if doc.invoice_id else None,
                "paid": doc.paid,
                "paid_at": doc.paid_at,
                "invoicee": invoicee,
                "total": {
                    "tax_exclusive": money(t["tax_exclusive"]),
                    "tax_inclusive": money(t["tax_inclusive"]),
                    "payable": money(t["payable"]),
                    "taxes": taxes,
                },
                "created_at": doc.created_at,
                "updated_at": doc.updated_at,
            }
        if full:
            invoicee.update(
                {
                    "email": doc.invoicee["email"],
                    "national_identification_number": doc.invoicee["national_identification_number"],
                }
            )
            if doc.kind == "invoice":
                invoicee["for_attention_of"] = None
            rates = self._department_rates(doc.department_id)
            sections: dict[str, list[dict[str, Any]]] = {}
            for line in doc.lines:
                sections.setdefault(line.section, []).append(self._render_line(doc, line, rates, money))
            data.update(
                {
                    "currency": cur,
                    "currency_exchange_rate": doc.exchange,
                    "discounts": [_public_discount(d) for d in doc.discounts if d["type"] == "percentage"],
                    "grouped_lines": [
                        {"section": {"title": title}, "line_items": items} for title, items in sections.items()
                    ],
                    "document_template": None,
                    "peppol_status": None,
                }
            )
            data["total"].update(
                {
                    "tax_exclusive_before_discount": money(t["tax_exclusive_before_discount"]),
                    "tax_inclusive_before_discount": money(t["tax_inclusive_before_discount"]),
                    "withheld_taxes": [],
                }
            )
            if doc.kind == "invoice":
                data.update(
                    {
                        "payment_term": {"type": "after_invoice_date", "days": 30} if doc.due_on else None,
                        "payments": [{"paid_at": p["paid_at"], "payment": money(p["payment"])} for p in doc.payments],
                        "expected_payment_method": None,
                        "custom_fields": [],
                    }
                )
        if self.extensions:
            _extend_document(data, doc, full=full)
        return data

    def _render_line(
        self, doc: _Doc, line: _Line, rates: Mapping[str, Decimal], money: Callable[[Decimal], Any]
    ) -> dict[str, Any]:
        rate = rates[line.tax_rate_id]
        item: dict[str, Any] = {
            "product": None,
            "quantity": line.quantity,
            "description": line.description,
            "extended_description": line.extended_description,
            "unit": None,
            "unit_price": {"amount": line.unit_price, "tax": "excluding"},
            "tax": {"type": "taxRate", "id": line.tax_rate_id},
            "discount": None if line.discount is None else {"value": line.discount, "type": "percentage"},
            "total": {
                "tax_exclusive": money(line.net),
                "tax_exclusive_before_discount": money(line.before),
                "tax_inclusive": money(line.net + round_money(line.net * rate)),
                "tax_inclusive_before_discount": money(line.before + round_money(line.before * rate)),
            },
            "product_category": {"type": "productCategory", "id": line.product_category_id}
            if line.product_category_id
            else None,
        }
        if doc.kind == "invoice":
            item["withheld_tax"] = None
        if self.extensions:
            _extend_line(item, line)
        return item

    def _render_incoming(self, doc: _Incoming) -> dict[str, Any]:
        data = {
            "id": doc.id,
            "title": doc.title,
            "origin": doc.origin,
            "supplier": {"type": doc.supplier[0], "id": doc.supplier[1]} if doc.supplier else None,
            "document_number": doc.document_number,
            "invoice_date": doc.document_date,
            "due_date": doc.due_date,
            "currency": {"code": doc.currency},
            "total": {
                "tax_exclusive": None if doc.tax_exclusive is None else {"amount": doc.tax_exclusive},
                "tax_inclusive": None if doc.tax_inclusive is None else {"amount": doc.tax_inclusive},
            },
            "company_entity": {"type": "department", "id": doc.department_id},
            "file": {"type": "file", "id": doc.file_id} if doc.file_id else None,
            "payment_reference": doc.payment_reference,
            "review_status": doc.review_status,
            "iban_number": doc.iban_number,
            "payment_status": doc.payment_status,
        }
        if self.extensions:
            _extend_incoming(data, doc)
        return data

    # ------------------------------------------------------------------ lookups for handlers

    def _own_doc(self, account: _Account, kind: str, doc_id: str) -> _Doc:
        doc = self._docs.get(doc_id)
        if doc is None or doc.kind != kind or doc.account_id != account.id:
            raise ApiError(404, f"{_LABEL[kind]} {doc_id} not found")
        return doc

    def _own_record(self, account: _Account, table: Mapping[str, _Record], kind: str, record_id: str) -> _Record:
        record = table.get(record_id)
        if record is None or record.account_id != account.id:
            raise ApiError(404, f"{_LABEL[kind]} {record_id} not found")
        return record

    def _own_department(self, account: _Account, department_id: str) -> _Record:
        return self._own_record(account, self._departments, "department", department_id)

    def _own_incoming(self, account: _Account, kind: str, doc_id: str) -> _Incoming:
        doc = self._incoming.get(doc_id)
        if doc is None or doc.kind != kind or doc.account_id != account.id:
            raise ApiError(404, f"{_LABEL[kind]} {doc_id} not found")
        return doc

    def _customer_filter(self, account: _Account, inp: _In) -> tuple[str, str] | None:
        ref = inp.ref("customer", ("company", "contact"))
        if ref is not None:
            self._own_record(account, self._companies if ref[0] == "company" else self._contacts, ref[0], ref[1])
        return ref

    # ------------------------------------------------------------------ handlers: departments (§3)

    def _departments_list(self, account: _Account, body: _In) -> Any:
        """``departments.list``: ``filter.ids``, ``filter.status[]``; sort ``name`` | ``created_at``
        (default: creation order, the first department being the default one). No paging."""
        flt = body.obj("filter")
        ids, statuses = flt.texts("ids"), flt.choices("status", ("active", "archived"))
        rows = [
            d
            for d in self._departments.values()
            if d.account_id == account.id
            and (ids is None or d.id in ids)
            and (statuses is None or d.data["status"] in statuses)
        ]
        field_, order = body.sort(("default_department", "name", "created_at"), "default_department", "asc")
        if field_ != "default_department":
            rows.sort(key=lambda d: d.data[field_], reverse=order == "desc")
        elif order == "desc":
            rows.reverse()
        keys = ("id", "name", "vat_number", "currency", "emails", "status")
        return {"data": [{k: d.data[k] for k in keys} for d in rows]}

    def _departments_info(self, account: _Account, body: _In) -> Any:
        """``departments.info {id}``."""
        dept = self._own_department(account, body.text("id", required=True) or "")
        data = dict(dept.data)
        data.pop("created_at")
        return {"data": data}

    # ------------------------------------------------------------------ handlers: invoices (§4)

    def _invoices_list(self, account: _Account, body: _In) -> Any:
        """``invoices.list`` (§4.2). Filters ``ids``, ``department_id``, ``status[]``, ``updated_since``
        (inclusive), ``invoice_date_after`` / ``invoice_date_before`` (both inclusive), ``customer``,
        ``invoice_number``, ``purchase_order_number``, ``payment_reference``, ``term``; ``page``;
        ``sort`` ``invoice_number`` (default, natural order) | ``invoice_date``, default ``desc``."""
        flt = body.obj("filter")
        ids = flt.texts("ids")
        dept_id = flt.text("department_id")
        if dept_id is not None:
            self._own_department(account, dept_id)
        statuses = flt.choices("status", INVOICE_STATUSES)
        since = flt.timestamp("updated_since")
        after, before = flt.date("invoice_date_after"), flt.date("invoice_date_before")
        customer = self._customer_filter(account, flt)
        exact = {
            k: v
            for k in ("invoice_number", "purchase_order_number", "payment_reference")
            if (v := flt.text(k)) is not None
        }
        term = (flt.text("term") or "").casefold()
        size, number = body.page()
        field_, order = body.sort(("invoice_number", "invoice_date"), "invoice_number", "desc")

        def keep(d: _Doc) -> bool:
            return (
                d.kind == "invoice"
                and d.account_id == account.id
                and (ids is None or d.id in ids)
                and (dept_id is None or d.department_id == dept_id)
                and (statuses is None or d.status in statuses)
                and (since is None or datetime.fromisoformat(d.updated_at) >= since)
                and (after is None or (d.date is not None and d.date >= after.isoformat()))
                and (before is None or (d.date is not None and d.date <= before.isoformat()))
                and (customer is None or d.customer == customer)
                and all(value == (d.number if k == "invoice_number" else getattr(d, k)) for k, value in exact.items())
                and (
                    not term
                    or any(
                        term in (v or "").casefold()
                        for v in (d.number, d.purchase_order_number, d.payment_reference, d.invoicee["name"])
                    )
                )
            )

        rows = [d for d in self._docs.values() if keep(d)]
        if field_ == "invoice_date":
            rows.sort(key=lambda d: (d.date or "", _natural(d.number), d.id), reverse=order == "desc")
        else:
            rows.sort(key=lambda d: (_natural(d.number), d.date or "", d.id), reverse=order == "desc")
        return self._list_response(body, rows, size, number, lambda d: self._render_doc(d, full=False))

    def _invoices_info(self, account: _Account, body: _In) -> Any:
        """``invoices.info {id, includes?}`` (§4.3); ``includes`` is accepted and ignored."""
        doc = self._own_doc(account, "invoice", body.text("id", required=True) or "")
        return {"data": self._render_doc(doc, full=True)}

    def _invoices_register_payment(self, account: _Account, body: _In) -> Any:
        """``invoices.registerPayment {id, payment {amount, currency}, paid_at, payment_method_id?}`` -> 204.
        Refused (400) for a draft, a currency other than the invoice's, or a non-positive amount."""
        doc = self._own_doc(account, "invoice", body.text("id", required=True) or "")
        payment = body.obj("payment", required=True)
        amount = payment.amount("amount", required=True)
        currency = payment.text("currency", required=True)
        paid_at = body.timestamp("paid_at", required=True)
        body.text("payment_method_id")
        assert amount is not None and paid_at is not None
        if doc.status == "draft":
            raise ApiError(400, "id: a draft invoice cannot receive payments")
        if amount <= 0:
            raise ApiError(400, "payment.amount must be positive")
        if currency != doc.currency:
            raise ApiError(400, f"payment.currency must be the invoice currency {doc.currency}")
        self._register_payment(doc, amount, paid_at.isoformat())
        return None

    # ------------------------------------------------------------------ handlers: credit notes (§5)

    def _credit_notes_list(self, account: _Account, body: _In) -> Any:
        """``creditNotes.list`` (§5). Filters ``ids``, ``department_id``, ``updated_since`` (inclusive),
        ``invoice_id``, ``customer``, ``credit_note_date_after`` (**inclusive**),
        ``credit_note_date_before`` (**exclusive**); ``page``. No ``sort`` is documented: rows come by
        credit-note date, then number, ascending."""
        flt = body.obj("filter")
        ids = flt.texts("ids")
        dept_id = flt.text("department_id")
        if dept_id is not None:
            self._own_department(account, dept_id)
        since = flt.timestamp("updated_since")
        invoice_id = flt.text("invoice_id")
        after, before = flt.date("credit_note_date_after"), flt.date("credit_note_date_before")
        customer = self._customer_filter(account, flt)
        size, number = body.page()
        rows = [
            d
            for d in self._docs.values()
            if d.kind == "creditNote"
            and d.account_id == account.id
            and (ids is None or d.id in ids)
            and (dept_id is None or d.department_id == dept_id)
            and (since is None or datetime.fromisoformat(d.updated_at) >= since)
            and (invoice_id is None or d.invoice_id == invoice_id)
            and (after is None or (d.date or "") >= after.isoformat())
            and (before is None or (d.date or "") < before.isoformat())
            and (customer is None or d.customer == customer)
        ]
        rows.sort(key=lambda d: (d.date or "", _natural(d.number), d.id))
        return self._list_response(body, rows, size, number, lambda d: self._render_doc(d, full=False))

    def _credit_notes_info(self, account: _Account, body: _In) -> Any:
        """``creditNotes.info {id}`` (§5); ``data`` is an object (the documented array is treated as a
        documentation quirk)."""
        doc = self._own_doc(account, "creditNote", body.text("id", required=True) or "")
        return {"data": self._render_doc(doc, full=True)}

    # ------------------------------------------------------------------ handlers: relations (§6)

    def _relations_list(self, account: _Account, body: _In, table: Mapping[str, _Record], kind: str) -> Any:
        flt = body.obj("filter")
        ids = flt.texts("ids")
        term = (flt.text("term") or "").casefold()
        vat = flt.text("vat_number") if kind == "company" else None
        nin = flt.text("national_identification_number") if kind == "company" else None
        since = flt.timestamp("updated_since")
        status = flt.choice("status", ("active", "deactivated")) if kind == "company" else None
        size, number = body.page()
        field_, order = body.sort(("name", "added_at", "updated_at"), "name", "asc")

        def name(r: _Record) -> str:
            d = r.data
            return d.get("name") or " ".join(p for p in (d.get("first_name"), d.get("last_name")) if p)

        def keep(r: _Record) -> bool:
            d = r.data
            haystack = [name(r), d.get("vat_number"), *(e["email"] for e in d.get("emails") or [])]
            return (
                r.account_id == account.id
                and (ids is None or r.id in ids)
                and (not term or any(term in (v or "").casefold() for v in haystack))
                and (vat is None or _norm_vat(d.get("vat_number")) == _norm_vat(vat))
                and (nin is None or d.get("national_identification_number") == nin)
                and (since is None or datetime.fromisoformat(d["updated_at"]) >= since)
                and (status is None or d.get("status") == status)
            )

        rows = [r for r in table.values() if keep(r)]
        sort_key: Callable[[_Record], Any] = (
            (lambda r: (name(r).casefold(), r.id)) if field_ == "name" else (lambda r: (r.data[field_], r.id))
        )
        rows.sort(key=sort_key, reverse=order == "desc")
        return self._list_response(body, rows, size, number, self._render_record)

    def _companies_list(self, account: _Account, body: _In) -> Any:
        """``companies.list`` (§6): filters ``ids``, ``term``, ``vat_number`` (formatting ignored),
        ``national_identification_number``, ``updated_since``, ``status``; ``page``; sort ``name``
        (default asc) | ``added_at`` | ``updated_at``. Rows have the ``.info`` shape."""
        return self._relations_list(account, body, self._companies, "company")

    def _companies_info(self, account: _Account, body: _In) -> Any:
        """``companies.info {id}`` (§6)."""
        record = self._own_record(account, self._companies, "company", body.text("id", required=True) or "")
        return {"data": self._render_record(record)}

    def _contacts_list(self, account: _Account, body: _In) -> Any:
        """``contacts.list`` (§6): filters ``ids``, ``term``, ``updated_since``; ``page``; ``sort``."""
        return self._relations_list(account, body, self._contacts, "contact")

    def _contacts_info(self, account: _Account, body: _In) -> Any:
        """``contacts.info {id}`` (§6)."""
        record = self._own_record(account, self._contacts, "contact", body.text("id", required=True) or "")
        return {"data": self._render_record(record)}

    # ------------------------------------------------------------------ handlers: reference data (§8)

    def _tax_rates_list(self, account: _Account, body: _In) -> Any:
        """``taxRates.list`` (§8): ``filter.department_id``; ``page``; sort ``rate`` | ``description``
        | ``department_id`` (default: creation order)."""
        dept_id = body.obj("filter").text("department_id")
        if dept_id is not None:
            self._own_department(account, dept_id)
        size, number = body.page()
        rows = [
            r
            for r in self._tax_rates.values()
            if r.account_id == account.id and (dept_id is None or r.data["department"]["id"] == dept_id)
        ]
        if body.has("sort"):
            field_, order = body.sort(("department_id", "rate", "description"), "rate", "asc")
            keys: dict[str, Callable[[_Record], Any]] = {
                "department_id": lambda r: r.data["department"]["id"],
                "rate": lambda r: r.data["rate"],
                "description": lambda r: r.data["description"],
            }
            rows.sort(key=keys[field_], reverse=order == "desc")
        return self._list_response(body, rows, size, number, self._render_record)

    def _product_categories_list(self, account: _Account, body: _In) -> Any:
        """``productCategories.list`` (§8): ``filter.department_id`` keeps the categories with a ledger
        for that department. No paging."""
        dept_id = body.obj("filter").text("department_id")
        if dept_id is not None:
            self._own_department(account, dept_id)
        rows = [
            r.data
            for r in self._categories.values()
            if r.account_id == account.id
            and (dept_id is None or any(ledger["department"]["id"] == dept_id for ledger in r.data["ledgers"]))
        ]
        return {"data": rows}

    # ------------------------------------------------------------------ handlers: expenses (§7)

    def _expenses_list(self, account: _Account, body: _In) -> Any:
        """``expenses.list`` (§7.1) over incoming invoices / credit notes (no receipts in the sandbox).

        Filters ``source_types[]``, ``review_statuses[]``, ``bookkeeping_statuses[]``,
        ``payment_statuses[]``, ``department_ids[]``, ``supplier``, ``term``, ``document_date {operator:
        is_empty | equals | before | after (strict) | between (inclusive, start + end), value}``; ``page``;
        ``includes: "pagination"`` adds ``meta {page, matches}``. Order: document date, then number."""
        flt = body.obj("filter")
        types = flt.choices("source_types", (*INCOMING_KINDS, "receipt"))
        reviews = flt.choices("review_statuses", REVIEW_STATUSES)
        books = flt.choices("bookkeeping_statuses", BOOKKEEPING_STATUSES)
        pays = flt.choices("payment_statuses", ("paid", "unpaid"))
        depts = flt.texts("department_ids")
        supplier = flt.ref("supplier", ("company", "contact"))
        term = (flt.text("term") or "").casefold()
        date_test = _date_operator(flt, "document_date")
        size, number = body.page()

        def keep(d: _Incoming) -> bool:
            return (
                d.account_id == account.id
                and (types is None or d.kind in types)
                and (reviews is None or d.review_status in reviews)
                and (books is None or d.bookkeeping_status in books)
                and (pays is None or ("paid" if d.payment_status == "paid" else "unpaid") in pays)
                and (depts is None or d.department_id in depts)
                and (supplier is None or d.supplier == supplier)
                and (not term or any(term in (v or "").casefold() for v in (d.document_number, d.title)))
                and date_test(d.document_date)
            )

        rows = sorted((d for d in self._incoming.values() if keep(d)),
                      key=lambda d: (d.document_date or "", _natural(d.document_number), d.id))
        out = []
        for d in rows:
            row = {
                "source": {"type": d.kind, "id": d.id},
                "origin": d.origin,
                "title": d.title,
                "document_number": d.document_number,
                "document_date": d.document_date,
                "due_date": d.due_date,
                "supplier": {"type": d.supplier[0], "id": d.supplier[1]} if d.supplier else None,
                "currency": {"code": d.currency},
                "total": {
                    "tax_exclusive": None if d.tax_exclusive is None else {"amount": d.tax_exclusive},
                    "tax_inclusive": None if d.tax_inclusive is None else {"amount": d.tax_inclusive},
                },
                "company_entity": {"type": "department", "id": d.department_id},
                "file": {"type": "file", "id": d.file_id} if d.file_id else None,
                "payment_reference": d.payment_reference,
                "iban_number": d.iban_number,
                "review_status": d.review_status,
                "bookkeeping_status": d.bookkeeping_status,
                "payment_status": d.payment_status,
                "paid_amount": d.paid_amount,
                "paid_at": d.payments[-1]["paid_at"] if d.payments else None,
            }
            if self.extensions:
                _extend_incoming(row, d)
            out.append(row)
        return self._list_response(body, out, size, number)

    # ------------------------------------------------------------------ handlers: webhooks (§9)

    def _webhooks_register(self, account: _Account, body: _In) -> Any:
        """``webhooks.register {url, types[]}`` -> 204; ``url`` must be http(s), every type one of
        :data:`WEBHOOK_EVENT_TYPES` (plain http accepted: whether the real server refuses it is unconfirmed)."""
        url, types = self._webhook_body(body)
        account.webhooks.setdefault(url, set()).update(types)
        return None

    def _webhooks_list(self, account: _Account, body: _In) -> Any:
        """``webhooks.list`` -> ``data[] {url, types[]}`` ordered by URL (types sorted)."""
        return {"data": [{"url": u, "types": sorted(t)} for u, t in sorted(account.webhooks.items())]}

    def _webhooks_unregister(self, account: _Account, body: _In) -> Any:
        """``webhooks.unregister {url, types[]}`` -> 204; removes those types (the URL when none is left).
        An unknown URL is a 404."""
        url, types = self._webhook_body(body)
        if url not in account.webhooks:
            raise ApiError(404, f"webhook {url} not found")
        account.webhooks[url] -= set(types)
        if not account.webhooks[url]:
            del account.webhooks[url]
        return None

    @staticmethod
    def _webhook_body(body: _In) -> tuple[str, list[str]]:
        url = body.text("url", required=True) or ""
        if not re.match(r"^https?://\S+$", url):
            raise ApiError(400, "url must be an http(s) URL")
        types = body.texts("types")
        if not types:
            raise ApiError(400, "types must be a non-empty array of event types")
        for t in types:
            if t not in WEBHOOK_EVENT_TYPES:
                raise ApiError(400, f"types: unknown event type {t!r}")
        return url, types

    # ------------------------------------------------------------------ list envelope

    @staticmethod
    def _list_response(
        body: _In, rows: list[Any], size: int, number: int, render: Callable[[Any], Any] | None = None
    ) -> Any:
        """``{"data": page}`` (rows rendered after paging), plus ``meta`` with ``includes: "pagination"``."""
        page = _paginate(rows, size, number)
        result: dict[str, Any] = {"data": [render(row) for row in page] if render else page}
        if "pagination" in (body.text("includes") or "").split(","):
            result["meta"] = {"page": {"size": size, "number": number}, "matches": len(rows)}
        return result


# ----------------------------------------------------------------------------------- module helpers


_LABEL = {
    "invoice": "Invoice",
    "creditNote": "Credit note",
    "company": "Company",
    "contact": "Contact",
    "department": "Department",
    "incomingInvoice": "Incoming invoice",
    "incomingCreditNote": "Incoming credit note",
}
_SUBJECT_ALIASES = {"credit_note": "creditNote", "incoming_invoice": "incomingInvoice",
                    "incoming_credit_note": "incomingCreditNote"}


def _error(status: int, title: str) -> Response:
    return Response(encode_json({"errors": [{"title": title}]}), status=status, content_type="application/json")


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _iso_date(value: date | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(value).isoformat()


def _address(address: Mapping[str, Any] | None) -> dict[str, Any]:
    address = address or {}
    return {
        "line_1": address.get("line_1"),
        "postal_code": address.get("postal_code"),
        "city": address.get("city"),
        "country": address.get("country"),
        "area_level_two": None,
    }


def _exchange(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"from": value["from"], "to": value["to"], "rate": _dec(value["rate"], "currency_exchange_rate.rate")}


def _tax_id(spec: Mapping[str, Any]) -> Any:
    tax = spec.get("tax")
    return tax.get("id") if isinstance(tax, Mapping) else spec.get("tax_rate_id")


def _compute_totals(
    lines: Sequence[_Line],
    discounts: Sequence[Mapping[str, Any]],
    charges: Sequence[Mapping[str, Any]],
    rates: Mapping[str, Decimal],
) -> dict[str, Any]:
    """Document totals: taxable per tax rate id = line totals - discounts + charges (percentage discounts
    by :func:`connector.host.mapping.percentage_allowances`), grouped by numeric rate into ``taxes[]``
    (highest rate first) with ``tax = round(taxable x rate, 2)``."""
    nets: dict[str, Decimal] = {}
    for line in lines:
        nets[line.tax_rate_id] = nets.get(line.tax_rate_id, ZERO) + line.net
    taxable = dict(nets)
    for d in discounts:
        if d["type"] == "percentage":
            for rate_id, amount in percentage_allowances(nets, d["value"]).items():
                taxable[rate_id] -= amount
        else:
            taxable[d["tax"]["id"]] = taxable.get(d["tax"]["id"], ZERO) - d["value"]
    for c in charges:
        taxable[c["tax"]["id"]] = taxable.get(c["tax"]["id"], ZERO) + c["value"]
    by_rate: dict[Decimal, Decimal] = {}
    for rate_id, amount in taxable.items():
        by_rate[rates[rate_id]] = by_rate.get(rates[rate_id], ZERO) + amount
    taxes = []
    for rate, amount in sorted(by_rate.items(), key=lambda kv: -kv[0]):
        # The product keeps its breakdown per tax rate (category and rate); the numeric rate's VAT is
        # round(taxable x rate) as the public API shows it, each tax rate's part is its own rounded VAT
        # with the rounding difference on the largest one, so the parts add up to the rate's row.
        ids = [r for r in taxable if rates[r] == rate]
        parts = [round_money(taxable[r] * rate) for r in ids]
        largest = max(range(len(ids)), key=lambda i: (abs(taxable[ids[i]]), -i))
        parts[largest] += round_money(amount * rate) - sum(parts, ZERO)
        taxes += [{"rate": rate, "taxable": taxable[r], "tax": part, "tax_rate_id": r} for r, part in zip(ids, parts, strict=True)]
    net = sum(taxable.values(), ZERO)
    vat = sum((t["tax"] for t in taxes), ZERO)
    before = sum(nets.values(), ZERO)
    vat_before = sum((round_money(n * rates[r]) for r, n in nets.items()), ZERO)
    return {
        "tax_exclusive": net,
        "tax_exclusive_before_discount": before,
        "tax_inclusive": net + vat,
        "tax_inclusive_before_discount": before + vat_before,
        "taxes": taxes,
        "payable": net + vat,
    }


def _taxes_by_rate(taxes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The public API's ``total.taxes[]`` (host-api.md §4.3): the product's breakdown per tax rate summed
    per numeric rate, in order of first appearance."""
    merged: dict[Decimal, dict[str, Any]] = {}
    for row in taxes:
        group = merged.setdefault(row["rate"], {"rate": row["rate"], "taxable": ZERO, "tax": ZERO})
        group["taxable"] += row["taxable"]
        group["tax"] += row["tax"]
    return list(merged.values())


def _public_discount(discount: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": discount["type"], "value": discount["value"], "description": discount["description"]}


def _date_operator(flt: _In, key: str) -> Callable[[str | None], bool]:
    """The ``{operator, value | start + end}`` date filter of ``expenses.list`` (§7.1) as a predicate."""
    if not flt.has(key):
        return lambda _value: True
    spec = flt.obj(key)
    operator = spec.choice("operator", ("is_empty", "between", "equals", "before", "after"), required=True)
    if operator == "is_empty":
        return lambda value: value is None
    if operator == "between":
        start, end = spec.date("start", required=True), spec.date("end", required=True)
        assert start is not None and end is not None
        return lambda value: value is not None and start.isoformat() <= value <= end.isoformat()
    bound = spec.date("value", required=True)
    assert bound is not None
    b = bound.isoformat()
    tests: dict[str, Callable[[str], bool]] = {
        "equals": lambda v: v == b,
        "before": lambda v: v < b,
        "after": lambda v: v > b,
    }
    test = tests[operator or "equals"]
    return lambda value: value is not None and test(value)


def _incoming_info_handler(kind: str) -> Callable[[HostSandbox, _Account, _In], Any]:
    def handler(self: HostSandbox, account: _Account, body: _In) -> Any:
        doc = self._own_incoming(account, kind, body.text("id", required=True) or "")
        return {"data": self._render_incoming(doc)}

    handler.__doc__ = f"``{kind}s.info {{id}}`` (§7.2); no ``bookkeeping_status`` (documented)."
    return handler

def _incoming_send_handler(kind: str) -> Callable[[HostSandbox, _Account, _In], Any]:
    def handler(self: HostSandbox, account: _Account, body: _In) -> Any:
        doc = self._own_incoming(account, kind, body.text("id", required=True) or "")
        doc.bookkeeping_status = "sent"
        doc.updated_at = self._now()
        self._emit(account.id, f"{kind}.bookkeepingSubmissionSucceeded", kind, doc.id)
        return None

    handler.__doc__ = f"``{kind}s.sendToBookkeeping {{id}}`` -> 204; sets ``bookkeeping_status`` to sent."
    return handler

def _incoming_pay_handler(kind: str) -> Callable[[HostSandbox, _Account, _In], Any]:
    def handler(self: HostSandbox, account: _Account, body: _In) -> Any:
        doc = self._own_incoming(account, kind, body.text("id", required=True) or "")
        payment = body.obj("payment", required=True)
        amount = payment.amount("amount", required=True)
        currency = payment.text("currency", required=True)
        paid_at = body.timestamp("paid_at", required=True)
        body.text("payment_method_id")
        body.text("remark")
        assert amount is not None and paid_at is not None
        if amount <= 0:
            raise ApiError(400, "payment.amount must be positive")
        if currency != doc.currency:
            raise ApiError(400, f"payment.currency must be the document currency {doc.currency}")
        payment_id = self._new_id()
        doc.payments.append({"id": payment_id, "paid_at": paid_at.isoformat(), "payment": amount})
        doc.updated_at = self._now()
        return 201, {"data": {"type": "payment", "id": payment_id}}

    handler.__doc__ = (
        f"``{kind}s.registerPayment {{id, payment {{amount, currency}}, paid_at, payment_method_id?, "
        "remark?}}`` -> 201 ``{data: {type: payment, id}}``."
    )
    return handler


# ===================================================================================================
# Host product extensions: what the product has inside but the public API (host-api.md) lacks.
# HOST_EXTENSIONS lists them; the helpers below render them and serve the extension endpoint. Elsewhere
# they appear only as stored values (`_Record.ext`, the `booking_number` / `source_file` / `charges` /
# `ledger_account_number` attributes, amount discounts and charges in `_compute_totals`) and as calls to
# these helpers under `if self.extensions`. A client of the real public API replaces exactly these.
# ===================================================================================================

HOST_EXTENSIONS: dict[str, str] = {
    "booking_number": (
        "Field on invoices, credit notes (.info and .list rows) and incoming documents (.info and "
        "expenses.list rows): the accounting tool's booking number, null until synced."
    ),
    "bookkeeping.registerBooking": (
        "Endpoint {subject: {type: invoice|creditNote|incomingInvoice|incomingCreditNote, id}, "
        "booking_number: digits | null} -> 204; letters or separators -> 400 (the host product stores only "
        "digits); null clears it; a new number overwrites the old one."
    ),
    "vat_type / customer_number": (
        "Fields on companies and contacts: the relation's VAT type (vat_liable, contractor, private_person, "
        "intra_community, not_liable) and its stable numeric customer number (assigned by the product)."
    ),
    "ledger_account_number": "Field on each invoice / credit-note line item: the line's ledger account, nullable.",
    "discounts[].type = amount / charges[]": (
        "Document-level fixed-amount allowances {type: 'amount', value, description, tax: {type: 'taxRate', id}} "
        "in discounts[] and charges {value, description, tax} in the extra list charges[]."
    ),
    "taxRates.category": "Field on tax rates: the UNCL5305 VAT category (S, Z, E, AE, K, G, O, L, M).",
    "total.taxes[].tax_rate": (
        "The product keeps a document's VAT breakdown per tax rate (category and rate), not per numeric rate: "
        "with extensions, total.taxes[] has one row per tax rate, each with tax_rate {type: 'taxRate', id} beside "
        "the public rate, taxable and tax (two rows may share a numeric rate, e.g. G and O at 0 %); without them, "
        "the rows are summed per numeric rate as the public API gives them. A row set through total.taxes[] "
        "without tax_rate_id has no tax_rate."
    ),
    "source_file": "Field on documents: the file the document was loaded from (the demo's report).",
    "external_ids": (
        "Field on companies and contacts: [{department_id, tool, external_id}], the relation's code in the "
        "accounting tool of each company entity it was imported from or linked to (the product's 'External ID' / "
        "'Accounting package customer number', seed 001), at most one per company entity."
    ),
    "companies.add / companies.update / contacts.update": (
        "Endpoints (host-api.md documents none of them; Teamleader's public API has endpoints with these names, "
        "whose full field lists are not modelled here). companies.add {name, vat_number?, "
        "national_identification_number?, emails[]?, addresses[]?, tags[]?, vat_type?, external_id?} -> 201 "
        "{data: {type: company, id}}; companies.update {id, name?, vat_number?, tags[]?, external_id?} and "
        "contacts.update {id, tags[]?, external_id?} -> 204. external_id = {department_id, tool, external_id | null}: "
        "sets (null: clears) the link of that company entity, other entities' links stay; tags[] replaces the tags."
    ),
}
"""The host-product extensions, name -> what it is. The sandbox serves them unless ``extensions=False``."""

BOOKING_NUMBER_RE = re.compile(r"^[0-9]{1,32}$")
"""Booking numbers the host product can store: digits only (seed 004, Yuki: no letters, '-' or '/')."""


def _check_booking_number(value: Any) -> str:
    """The booking number as stored (digits), or :class:`ApiError` 400."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not BOOKING_NUMBER_RE.match(value):
        raise ApiError(
            400,
            f"booking_number {value!r} is refused: the host product stores only digits "
            "(no letters, spaces or separators such as '-' or '/')",
        )
    return value


def _extend_document(data: dict[str, Any], doc: _Doc, *, full: bool) -> None:
    """Add the extension fields to an invoice / credit-note ``.info`` (``full``) or ``.list`` row."""
    data["booking_number"] = doc.booking_number
    data["source_file"] = doc.source_file
    if isinstance(data.get("total"), dict) and "taxes" in data["total"]:
        data["total"]["taxes"] = [
            {
                "rate": x["rate"],
                "taxable": {"amount": x["taxable"], "currency": doc.currency},
                "tax": {"amount": x["tax"], "currency": doc.currency},
                **({"tax_rate": {"type": "taxRate", "id": x["tax_rate_id"]}} if x.get("tax_rate_id") else {}),
            }
            for x in doc.total["taxes"]
        ]
    if full:
        data["discounts"] = [
            {**_public_discount(d), **({"tax": d["tax"]} if d["type"] == "amount" else {})} for d in doc.discounts
        ]
        data["charges"] = copy.deepcopy(doc.charges)


def _extend_line(item: dict[str, Any], line: _Line) -> None:
    """Add the extension field of an invoice / credit-note line item."""
    item["ledger_account_number"] = line.ledger_account_number


def _extend_incoming(data: dict[str, Any], doc: _Incoming) -> None:
    """Add the extension fields of an incoming document (``.info`` data and ``expenses.list`` rows)."""
    data["booking_number"] = doc.booking_number
    data["source_file"] = doc.source_file


def _register_booking(self: HostSandbox, account: _Account, body: _In) -> Any:
    """``bookkeeping.registerBooking`` (extension, see :data:`HOST_EXTENSIONS`) -> 204."""
    subject = body.obj("subject", required=True)
    kind = subject.choice("type", ("invoice", "creditNote", *INCOMING_KINDS), required=True) or ""
    subject_id = subject.text("id", required=True) or ""
    if "booking_number" not in body.data:
        raise ApiError(400, "booking_number is required")
    raw = body.data["booking_number"]
    number = None if raw is None else _check_booking_number(raw)
    if kind in INCOMING_KINDS:
        target: _Doc | _Incoming = self._own_incoming(account, kind, subject_id)
    else:
        target = self._own_doc(account, kind, subject_id)
    # A booking number is bookkeeping metadata, not an edit of the document: ``updated_at`` stays, so
    # a connector comparing it can tell a real edit (Octopus pushes edited invoices again, seed 001).
    target.booking_number = number
    return None


def _files_info(self: HostSandbox, account: _Account, body: _In) -> Any:
    """``files.info {id}`` (§7.4) -> name, mime_type, size."""
    file_id = body.text("id", required=True) or ""
    stored = self._files.get(file_id)
    if stored is None or stored["account_id"] != account.id:
        raise ApiError(404, f"File {file_id} not found")
    return {"data": {"id": file_id, "name": stored["name"], "mime_type": stored["mime_type"], "size": len(stored["content"])}}


def _files_download(self: HostSandbox, account: _Account, body: _In) -> Any:
    """``files.download {id}`` (§7.4) -> ``{location, expires_at}``: a temporary URL (10 minutes)."""
    file_id = body.text("id", required=True) or ""
    stored = self._files.get(file_id)
    if stored is None or stored["account_id"] != account.id:
        raise ApiError(404, f"File {file_id} not found")
    expires = datetime.fromtimestamp(self.clock.now() + 600, UTC).isoformat()
    return {"data": {"location": f"{self._base_url}files/{file_id}?token={stored['token']}", "expires_at": expires}}


_VAT_TYPES = ("vat_liable", "contractor", "private_person", "intra_community", "not_liable")
_EMAIL_TYPES = ("primary", "invoicing")
_ADDRESS_TYPES = ("primary", "invoicing", "delivery", "visiting")


def _external_link(self: HostSandbox, account: _Account, body: _In) -> tuple[str, dict[str, Any] | None] | None:
    """The ``external_id`` object of a write (see :data:`HOST_EXTENSIONS`) as (department id, link or
    ``None`` to clear); ``None`` when the body has none. An unknown department is a 404."""
    if "external_id" not in body.data:
        return None
    link = body.obj("external_id", required=True)
    department_id = link.text("department_id", required=True) or ""
    self._own_department(account, department_id)
    tool = link.text("tool", required=True) or ""
    raw = link.data.get("external_id")
    if raw is not None and (not isinstance(raw, str) or not raw.strip() or len(raw) > 64):
        raise ApiError(400, "external_id.external_id must be a non-empty string (at most 64 characters) or null")
    if raw is None:
        return department_id, None
    return department_id, {"department_id": department_id, "tool": tool, "external_id": raw.strip()}


def _apply_external_link(record: _Record, department_id: str, link: dict[str, Any] | None) -> None:
    links = [dict(x) for x in record.ext.get("external_ids") or [] if x.get("department_id") != department_id]
    if link is not None:
        links.append(link)
    record.ext["external_ids"] = links


def _emails_in(body: _In) -> list[dict[str, Any]]:
    value = body.data.get("emails")
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "emails must be an array of {type, email}")
    out = []
    for i, item in enumerate(value):
        entry = _In(item, f"emails[{i}]")
        out.append({"type": entry.choice("type", _EMAIL_TYPES, required=True), "email": entry.text("email", required=True)})
    return out


def _addresses_in(body: _In) -> list[dict[str, Any]]:
    value = body.data.get("addresses")
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "addresses must be an array of {type, address}")
    out = []
    for i, item in enumerate(value):
        entry = _In(item, f"addresses[{i}]")
        kind = entry.choice("type", _ADDRESS_TYPES, required=True)
        address = entry.obj("address", required=True)
        fields = {k: address.text(k) for k in ("line_1", "postal_code", "city", "country")}
        if fields["country"] is not None and not (len(fields["country"]) == 2 and fields["country"].isalpha()):
            raise ApiError(400, f"addresses[{i}].address.country must be an ISO 3166-1 alpha-2 code")
        out.append({"type": kind, "address": _address(fields), "addressee": None})
    return out


def _companies_add(self: HostSandbox, account: _Account, body: _In) -> Any:
    """``companies.add`` (extension, see :data:`HOST_EXTENSIONS`) -> 201 ``{data: {type, id}}``."""
    name = body.text("name", required=True) or ""
    if not name.strip():
        raise ApiError(400, "name must not be blank")
    emails, addresses = _emails_in(body), _addresses_in(body)
    tags = body.texts("tags") or []
    vat_type = body.choice("vat_type", _VAT_TYPES)
    link = _external_link(self, account, body)
    company_id = self._insert_company(
        account, name.strip(), vat_number=body.text("vat_number"),
        national_identification_number=body.text("national_identification_number"), vat_type=vat_type,
        tags=tags, external_ids=[link[1]] if link and link[1] else [],
    )
    record = self._companies[company_id]
    record.data["emails"] = emails
    record.data["addresses"] = addresses
    return 201, {"data": {"type": "company", "id": company_id}}


def _relation_update(kind: str) -> Callable[[HostSandbox, _Account, _In], Any]:
    def handler(self: HostSandbox, account: _Account, body: _In) -> Any:
        table = self._companies if kind == "company" else self._contacts
        record = self._own_record(account, table, kind, body.text("id", required=True) or "")
        changes: dict[str, Any] = {}
        if kind == "company" and body.has("name"):
            name = body.text("name") or ""
            if not name.strip():
                raise ApiError(400, "name must not be blank")
            changes["name"] = name.strip()
        if kind == "company" and "vat_number" in body.data:
            changes["vat_number"] = body.text("vat_number")
        if body.has("tags"):
            changes["tags"] = list(body.texts("tags") or [])
        link = _external_link(self, account, body)
        record.data.update(changes)
        if link is not None:
            _apply_external_link(record, *link)
        record.data["updated_at"] = self._now()
        self._emit(account.id, f"{kind}.updated", kind, record.id)
        return None

    handler.__doc__ = (
        f"``{'companies' if kind == 'company' else 'contacts'}.update`` (extension, see :data:`HOST_EXTENSIONS`) -> 204."
    )
    return handler


_EXTENSION_ROUTES: dict[str, tuple[Callable[..., Any], bool]] = {
    "bookkeeping.registerBooking": (_register_booking, True),
    "companies.add": (_companies_add, True),
    "companies.update": (_relation_update("company"), True),
    "contacts.update": (_relation_update("contact"), True),
}

# ---------------------------------------------------------------------------------- public routes

_ROUTES: dict[str, tuple[Callable[..., Any], bool]] = {
    "departments.list": (HostSandbox._departments_list, False),
    "departments.info": (HostSandbox._departments_info, False),
    "invoices.list": (HostSandbox._invoices_list, False),
    "invoices.info": (HostSandbox._invoices_info, False),
    "invoices.registerPayment": (HostSandbox._invoices_register_payment, True),
    "creditNotes.list": (HostSandbox._credit_notes_list, False),
    "creditNotes.info": (HostSandbox._credit_notes_info, False),
    "companies.list": (HostSandbox._companies_list, False),
    "companies.info": (HostSandbox._companies_info, False),
    "contacts.list": (HostSandbox._contacts_list, False),
    "contacts.info": (HostSandbox._contacts_info, False),
    "taxRates.list": (HostSandbox._tax_rates_list, False),
    "productCategories.list": (HostSandbox._product_categories_list, False),
    "expenses.list": (HostSandbox._expenses_list, False),
    "files.info": (_files_info, False),
    "files.download": (_files_download, False),
    "webhooks.register": (HostSandbox._webhooks_register, True),
    "webhooks.list": (HostSandbox._webhooks_list, False),
    "webhooks.unregister": (HostSandbox._webhooks_unregister, True),
}
for _kind in INCOMING_KINDS:
    _ROUTES[f"{_kind}s.info"] = (_incoming_info_handler(_kind), False)
    _ROUTES[f"{_kind}s.sendToBookkeeping"] = (_incoming_send_handler(_kind), True)
    _ROUTES[f"{_kind}s.registerPayment"] = (_incoming_pay_handler(_kind), True)
