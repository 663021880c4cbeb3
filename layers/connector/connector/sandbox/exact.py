"""A loopback simulator of the Exact Online REST API (werkzeug WSGI app), for tests and the demo.

It follows ``shared/reference/accounting-apis.md`` §1 and enforces what the real API enforces: OAuth2
with 10-minute access tokens and rotating refresh tokens (§1.2), division-scoped OData v2 endpoints
(§1.4, §1.5), the master-data shapes (§1.6), sales / purchase entry validation (§1.7, §1.8), the payment
status rows (§1.9), the rate limits and their headers (§1.10) and the error envelope (§1.11).

Use it as the admin would: build an :class:`ExactSandbox`, add a client (the app registration), a
division and its master data (``add_division``, ``add_gl_account``, ``add_journal``, ``add_vat_code``,
``add_financial_year``, ``add_currency``, or ``seed_demo``), then serve ``sandbox`` (a WSGI app) through
``httpx.WSGITransport`` or :class:`connector.sandbox.server.LoopbackServer`. All time reads and sleeps go
through :func:`connector.clock.get_clock`, so a scaled or fake clock drives token expiry and rate limits.

Behaviour chosen where the reference marks a fact (unconfirmed) or is silent:

- Tokens: a refresh does not revoke the previous access token, which lives out its 600 s. An old
  refresh token gives ``400 {"error":"invalid_grant","error_description":"Old refresh token used."}``.
  A refresh while the grant's newest access token is younger than 570 s gives ``401`` with header
  ``Reason: Access Token not expired`` (§1.2). Bad client id / secret: ``400 {"error":"invalid_client"}``.
  Malformed token request: ``400 {"error":"invalid_request"}``. More than 200 token calls per client
  per UTC day: ``429 {"error":"too_many_requests"}`` with ``Retry-After``. A refresh token unused for
  30 days dies. The authorization code lives 180 s and is single-use (§1.2).
- API auth: a missing, unknown or expired access token gives ``401`` with headers
  ``WWW-Authenticate: Bearer error="invalid_token"`` and ``Reason`` (``Access token expired`` /
  ``Access token invalid``) and the error envelope; such calls are not counted against the rate limits
  and carry no ``X-RateLimit-*`` headers (no client is known for an unknown token). A division the
  sandbox does not hold gives ``403``.
- Rate limits (§1.10): counted per client per division; ``current/Me`` counts against the user's current
  division. The minute window is aligned to the clock's minute (reset = next whole minute), the day
  window to UTC midnight. A refused (429) call is not counted; every other call (4xx/5xx included) is.
  The 429 body says which limit was hit; ``Retry-After`` is whole seconds until that window's reset.
  The "more than 10 errors per hour blocks the key" rule (§1.10) is simulated: after the 11th 4xx on
  one endpoint within an hour, that endpoint answers 403 for an hour (status unconfirmed).
- OData (§1.4): pages of 60 rows, ordered by the entity key; ``__next`` repeats the query with
  ``$skiptoken=<key literal of the last row>`` (e.g. ``guid'…'``). ``$top`` caps the total. Supported
  options: ``$filter``, ``$select``, ``$top``, ``$skiptoken``, ``$expand`` (entry lines only),
  ``$format=json``; any other ``$`` option (``$orderby``, ``$skip``, ``$inlinecount``) gives ``400``.
  Entries list their lines as ``{"__deferred":{"uri":…}}`` unless ``$expand``-ed; expanded and in the
  POST answer they come as ``{"results":[…]}``. Filter strings compare like SQL Server (case-insensitive,
  trailing spaces ignored), see :mod:`connector.sandbox.odata`. Every row carries ``__metadata``.
- Unknown properties in a POST / PUT body give ``400 "Invalid: property 'X' does not exist on type
  '…'"``; read-only header totals ``AmountDC`` / ``VATAmountDC`` in a body are accepted and ignored.
- crm/Accounts: ``Code`` must be numeric (at most 18 digits) and is stored right-aligned in 18 chars; a
  duplicate gives ``400 "Already exists – Code: n"``. ``Status`` defaults to ``C`` when ``IsSales`` else
  ``A``. ``Country`` must be two letters. ``PUT`` answers ``204``; unknown id ``404``.
- Entries (§1.7, §1.8, §1.11): the first failing rule answers ``400``. Journal rules: a type-20 journal
  takes entries of Type 20 and 21, a type-21 journal only Type 21 (purchase: 22 → 30/31, 23 → 31).
  Credit notes (Type 21 / 31) carry negative amounts: the entry total incl. VAT must be ≤ 0, otherwise
  ``400 "Invalid: Amount – a credit note (Type 21) needs negative amounts"``; Type 20/30 entries take
  any sign (a negative invoice is allowed). The VAT code is matched exactly, padding included (send
  ``'2  '``, not ``'2'``). A line's ``VATAmountFC`` may differ from ``round(AmountFC × Percentage)`` by at
  most :data:`VAT_TOLERANCE` (1.00; Exact's own limit is undocumented). When the header carries ``AmountFC`` / ``VATAmountFC`` they must equal the lines' sums
  incl. VAT / of VAT ("not balanced"). ``DueDate`` defaults to ``EntryDate`` + 30 days (payment
  condition). ``EntryNumber`` defaults to the journal's highest number + 1 (or its first number).
  ``VATPercentage`` on lines is a fraction (0.21) like ``VATCodes.Percentage``. Amounts in DC are
  ``round(FC × Rate, 2)`` per line. Wording of messages not in §1.11 is this module's own.
- Receivables / Payments (§1.9): one row per entry (one payment term) when it is posted, ``Status`` 20
  open, amounts (``AmountFC``, ``TransactionAmountFC``) in the entry's sign as posted: a sales or
  purchase invoice positive, a credit note (Type 21 / 31) negative (unconfirmed for Payments, whose sign
  the reference does not give). :meth:`ExactSandbox.mark_paid` matches it (``Status`` 50, ``EndDate``),
  or splits it on a partial payment into a matched row and an open rest with the same
  ``TransactionEntryID`` (picqer's field docs: "a receivable can be split so that one part is received
  on a different date"; the exact mechanics are unconfirmed). ``cashflow/Payments`` has no
  ``IsFullyPaid`` / ``LastPaymentDate`` (picqer ``Payment.php`` lists neither, so selecting or filtering
  them gives ``400``); ``cashflow/Receivables`` has both. Both take ``$filter`` / ``$select`` / paging
  like any collection. ``read/financial/ReceivablesList`` / ``PayablesList`` list only entries with
  something open, one row per entry (``HID`` int, ``Amount`` = the open rest in the entry's sign).
- ``system/Divisions`` (Code, Description, Currency, Country, VATNumber) and ``general/Currencies``
  (the currencies enabled in the division) are served so a client can read the company currency;
  ``current/Me`` has no currency field.
- Exchange rates (``financial/ExchangeRates``: ``ID``, ``SourceCurrency``, ``TargetCurrency`` = the
  division currency, ``StartDate``, ``Rate`` = units of the division currency per unit of the source
  currency; GET, with ``$filter`` / ``$select`` like any collection): a table per division, set up with
  :meth:`ExactSandbox.add_exchange_rate` (or the ``rate`` of :meth:`ExactSandbox.add_currency`). An
  entry in a foreign currency without ``Rate`` gets the row with the latest ``StartDate`` on or before
  its ``EntryDate``; with none it is refused (``400``, "Invalid: Rate – no exchange rate for RSD on
  2024-05-01"; that Exact refuses rather than books at some rate is this module's choice, the reference
  is silent). Never rate 1 for a foreign currency; the division currency's own rate is 1.
"""

from __future__ import annotations

import math
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from connector.models import JournalSettings
from connector.sandbox.admin import DEMO_RATES, AdminRequest, Administration
from connector.clock import get_clock
from connector.money import round_money
from connector.sandbox.odata import (
    ODataError,
    dumps,
    format_literal,
    loads,
    parse_date_value,
    parse_filter,
    parse_literal,
)

__all__ = ["ExactSandbox", "demo_administration"]

ACCESS_TTL = 600  # seconds (§1.2)
REFRESH_MIN_AGE = 570  # seconds; refresh refused before (§1.2)
REFRESH_TTL = 30 * 86400  # unused refresh token lifetime (§1.2: 30-180 days)
CODE_TTL = 180  # authorization code lifetime (§1.2, ~3 min)
PAGE_SIZE = 60  # standard endpoints (§1.4, unconfirmed)
#: Largest difference a line's stated VAT may have from its base x the VAT code's rate. The real tool's
#: limit is not documented (its API reference has the line's VATAmountFC writable and gives no limit), so
#: it is kept at one currency unit -- EN 16931 BR-CO-17's tolerance, within which a valid e-invoice's
#: own VAT is booked -- no stricter than the tool is known to be, and still refusing a VAT amount that
#: is plainly wrong. Unconfirmed against the live service.
VAT_TOLERANCE = Decimal("1.00")

_MODEL = "Exact.Web.Api.Models."


class _Reject(Exception):
    """Short-circuits a handler with an error response."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _bad(message: str) -> _Reject:
    return _Reject(400, message)


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> float:
    return get_clock().now()


def _now_dt() -> datetime:
    return datetime.fromtimestamp(_now(), tz=UTC).replace(tzinfo=None)


def _is_guid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value.strip()) == 36


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise _bad(f"Invalid: {what}: {value!r}")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _bad(f"Invalid: {what}: '{value}' is not a number") from None
        if result.is_finite():
            return result
    raise _bad(f"Invalid: {what}: {value!r}")


def _two_places(amount: Decimal, what: str) -> Decimal:
    if round_money(amount) != amount:
        raise _bad(f"Invalid: {what}: {amount} has more than 2 decimals")
    return amount


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _bad(f"Invalid: {what}: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise _bad(f"Invalid: {what}: {value!r}")


def _error_body(message: str) -> dict[str, Any]:
    return {"error": {"code": "", "message": {"lang": "en-US", "value": message}}}


# ------------------------------------------------------------------------------------------- entities

G, S, I, D, B, T = "guid", "str", "int", "decimal", "bool", "datetime"

_GL_FIELDS = {
    "ID": G, "Code": S, "Description": S, "BalanceType": S, "BalanceSide": S, "Type": I,
    "TypeDescription": S, "VATCode": S, "IsBlocked": B, "SearchCode": S, "Costcenter": S, "Costunit": S,
    "Division": I, "Created": T, "Modified": T,
}
_JOURNAL_FIELDS = {
    "ID": G, "Code": S, "Description": S, "Type": I, "TypeDescription": S, "Currency": S, "AllowVAT": B,
    "IsBlocked": B, "GLAccount": G, "GLAccountCode": S, "Division": I,
}
_VAT_FIELDS = {
    "ID": G, "Code": S, "Description": S, "Percentage": D, "Type": S, "VATTransactionType": S,
    "IsBlocked": B, "GLToPay": G, "GLToPayCode": S, "GLToClaim": G, "GLToClaimCode": S, "Charged": B,
    "EUSalesListing": S, "Division": I,
}
_ACCOUNT_FIELDS = {
    "ID": G, "Code": S, "Name": S, "IsSales": B, "IsSupplier": B, "Status": S, "VATNumber": S,
    "ChamberOfCommerce": S, "Email": S, "Phone": S, "Website": S, "Country": S, "City": S, "Postcode": S,
    "AddressLine1": S, "AddressLine2": S, "AddressLine3": S, "State": S, "SalesVATCode": S,
    "PurchaseVATCode": S, "GLAccountSales": G, "GLAccountPurchase": G, "PaymentConditionSales": S,
    "PaymentConditionPurchase": S, "Blocked": B, "Type": S, "Language": S, "SearchCode": S, "Remarks": S,
    "Division": I, "Created": T, "Modified": T,
}
_ACCOUNT_WRITABLE = set(_ACCOUNT_FIELDS) - {"ID", "Division", "Created", "Modified"}


def _entry_fields(relation: str) -> dict[str, str]:
    return {
        "EntryID": G, "EntryNumber": I, "InvoiceNumber": I, "Journal": S, "JournalDescription": S,
        relation: G, f"{relation}Name": S, "EntryDate": T, "DueDate": T, "Type": I, "TypeDescription": S,
        "YourRef": S, "Description": S, "Currency": S, "Rate": D, "AmountFC": D, "AmountDC": D,
        "VATAmountFC": D, "VATAmountDC": D, "Status": I, "StatusDescription": S, "PaymentCondition": S,
        "PaymentReference": S, "ReportingYear": I, "ReportingPeriod": I, "FinancialYear": I,
        "FinancialPeriod": I, "Division": I, "Created": T, "Modified": T,
    }


_LINE_FIELDS = {
    "ID": G, "EntryID": G, "LineNumber": I, "GLAccount": G, "GLAccountCode": S, "GLAccountDescription": S,
    "AmountFC": D, "AmountDC": D, "VATCode": S, "VATAmountFC": D, "VATAmountDC": D, "VATPercentage": D,
    "VATBaseAmountFC": D, "VATBaseAmountDC": D, "Description": S, "Quantity": D, "CostCenter": S,
    "CostUnit": S, "Project": G, "From": T, "To": T, "Division": I,
}
_PURCHASE_LINE_FIELDS = {**_LINE_FIELDS, "VATNonDeductiblePercentage": D, "PrivateUsePercentage": D}
_LINE_WRITABLE = {
    "GLAccount", "AmountFC", "AmountDC", "VATCode", "VATAmountFC", "VATAmountDC", "Description", "Quantity",
    "CostCenter", "CostUnit", "Project", "From", "To",
}
_HEADER_WRITABLE_BASE = {
    "Journal", "EntryDate", "DueDate", "Type", "EntryNumber", "YourRef", "Description", "Currency", "Rate",
    "PaymentCondition", "PaymentReference", "ReportingYear", "ReportingPeriod", "AmountFC", "VATAmountFC",
    "AmountDC", "VATAmountDC",
}
_PAYMENT_FIELDS = {  # cashflow/Payments (§1.9; picqer Payment.php: no IsFullyPaid, no LastPaymentDate)
    "ID": G, "EntryID": G, "TransactionEntryID": G, "TransactionType": I, "EntryNumber": I, "InvoiceNumber": I,
    "YourRef": S, "Account": G, "AccountCode": S, "AccountName": S, "AmountFC": D, "AmountDC": D, "RateFC": D,
    "TransactionAmountFC": D, "TransactionAmountDC": D, "Currency": S, "Description": S, "DueDate": T,
    "TransactionDueDate": T, "InvoiceDate": T, "EntryDate": T, "Journal": S, "JournalDescription": S,
    "PaymentReference": S, "Status": I, "EndDate": T, "EndYear": I, "EndPeriod": I, "Division": I,
}
#: cashflow/Receivables: the Payments fields plus the two only receivables have (§1.9).
_RECEIVABLE_FIELDS = {**_PAYMENT_FIELDS, "IsFullyPaid": B, "LastPaymentDate": T}
_OPEN_LIST_FIELDS = {  # read/financial/ReceivablesList and PayablesList (§1.9): open items only
    "HID": I, "AccountId": G, "AccountCode": S, "AccountName": S, "Amount": D, "AmountInTransit": D,
    "CurrencyCode": S, "Description": S, "DueDate": T, "EntryNumber": I, "InvoiceDate": T, "InvoiceNumber": I,
    "JournalCode": S, "JournalDescription": S, "YourRef": S,
}
_DIVISION_FIELDS = {"Code": I, "Description": S, "Currency": S, "Country": S, "VATNumber": S}
_CURRENCY_FIELDS = {"Code": S, "Description": S, "AmountPrecision": D, "PricePrecision": D}
_EXCHANGE_RATE_FIELDS = {  # financial/ExchangeRates (exact.md)
    "ID": G, "Rate": D, "SourceCurrency": S, "StartDate": T, "TargetCurrency": S, "SourceCurrencyDescription": S,
    "TargetCurrencyDescription": S, "Division": I, "Created": T, "Modified": T,
}
_ME_FIELDS = {
    "CurrentDivision": I, "AccountingDivision": I, "UserID": G, "UserName": S, "FullName": S, "Email": S,
    "LanguageCode": S, "DivisionCustomerVatNumber": S, "ServerTime": T,
}


@dataclass(frozen=True)
class _Spec:
    """One OData collection: its path, model type name, key, typed fields and where its rows live."""

    path: str
    type_name: str
    key: str
    fields: Mapping[str, str]
    store: str  # attribute of _Division holding key -> row
    nav: str | None = None  # navigation property with the entry lines
    nav_store: str | None = None


_SPECS: dict[str, _Spec] = {
    s.path: s
    for s in (
        _Spec("financial/GLAccounts", _MODEL + "Financial.GLAccount", "ID", _GL_FIELDS, "gl_accounts"),
        _Spec("financial/Journals", _MODEL + "Financial.Journal", "ID", _JOURNAL_FIELDS, "journals"),
        _Spec("vat/VATCodes", _MODEL + "VAT.VATCode", "ID", _VAT_FIELDS, "vat_codes"),
        _Spec("crm/Accounts", _MODEL + "CRM.Account", "ID", _ACCOUNT_FIELDS, "accounts"),
        _Spec("salesentry/SalesEntries", _MODEL + "SalesEntry.SalesEntry", "EntryID", _entry_fields("Customer"),
              "sales", "SalesEntryLines", "sales_lines"),
        _Spec("salesentry/SalesEntryLines", _MODEL + "SalesEntry.SalesEntryLine", "ID", _LINE_FIELDS,
              "sales_lines"),
        _Spec("purchaseentry/PurchaseEntries", _MODEL + "PurchaseEntry.PurchaseEntry", "EntryID",
              _entry_fields("Supplier"), "purchases", "PurchaseEntryLines", "purchase_lines"),
        _Spec("purchaseentry/PurchaseEntryLines", _MODEL + "PurchaseEntry.PurchaseEntryLine", "ID",
              _PURCHASE_LINE_FIELDS, "purchase_lines"),
        _Spec("financial/FinancialPeriods", _MODEL + "Financial.FinancialPeriod", "ID",
              {"ID": G, "FinYear": I, "FinPeriod": I, "StartDate": T, "EndDate": T, "Division": I}, "_periods"),
        _Spec("cashflow/Receivables", _MODEL + "Cashflow.Receivable", "ID", _RECEIVABLE_FIELDS, "receivables"),
        _Spec("cashflow/Payments", _MODEL + "Cashflow.Payment", "ID", _PAYMENT_FIELDS, "payments"),
        _Spec("read/financial/ReceivablesList", _MODEL + "Read.Financial.ReceivablesListItem", "HID",
              _OPEN_LIST_FIELDS, "_open:receivables"),
        _Spec("read/financial/PayablesList", _MODEL + "Read.Financial.PayablesListItem", "HID",
              _OPEN_LIST_FIELDS, "_open:payments"),
        _Spec("system/Divisions", _MODEL + "System.Division", "Code", _DIVISION_FIELDS, "_divisions"),
        _Spec("general/Currencies", _MODEL + "General.Currency", "Code", _CURRENCY_FIELDS, "currency_rows"),
        _Spec("financial/ExchangeRates", _MODEL + "Financial.ExchangeRate", "ID", _EXCHANGE_RATE_FIELDS,
              "exchange_rates"),
    )
}


@dataclass(frozen=True)
class _EntryKind:
    """What differs between sales and purchase entries (§1.7)."""

    spec: str
    relation: str  # Customer / Supplier
    relation_flag: str  # IsSales / IsSupplier
    lines: str  # SalesEntryLines / PurchaseEntryLines
    journal_types: Mapping[int, frozenset[int]]  # entry Type -> allowed journal Types
    default_type: int
    credit_type: int
    vat_usage: frozenset[str]
    store: str
    line_store: str
    open_store: str  # receivables / payments
    open_spec: str  # cashflow/Receivables / cashflow/Payments
    line_fields: Mapping[str, str]
    line_writable: frozenset[str]
    label: str


_SALES = _EntryKind(
    "salesentry/SalesEntries", "Customer", "IsSales", "SalesEntryLines",
    {20: frozenset({20}), 21: frozenset({20, 21})}, 20, 21, frozenset({"S", "B"}),
    "sales", "sales_lines", "receivables", "cashflow/Receivables", _LINE_FIELDS, frozenset(_LINE_WRITABLE), "sales",
)
_PURCHASE = _EntryKind(
    "purchaseentry/PurchaseEntries", "Supplier", "IsSupplier", "PurchaseEntryLines",
    {30: frozenset({22}), 31: frozenset({22, 23})}, 30, 31, frozenset({"P", "B"}),
    "purchases", "purchase_lines", "payments", "cashflow/Payments", _PURCHASE_LINE_FIELDS,
    frozenset(_LINE_WRITABLE | {"VATNonDeductiblePercentage", "PrivateUsePercentage"}), "purchases",
)

_JOURNAL_TYPE_NAMES = {10: "Cash", 12: "Bank", 16: "Payment service", 20: "Sales", 21: "Return invoice",
                       22: "Purchase", 23: "Received return invoice", 90: "General journal"}
_ENTRY_TYPE_NAMES = {20: "Sales entry", 21: "Sales credit note", 30: "Purchase entry",
                     31: "Purchase credit note"}


# --------------------------------------------------------------------------------------------- state


@dataclass
class _Division:
    code: int
    description: str
    currency: str
    country: str
    vat_number: str | None
    gl_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    journals: dict[str, dict[str, Any]] = field(default_factory=dict)
    vat_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    years: list[dict[str, Any]] = field(default_factory=list)
    currencies: set[str] = field(default_factory=set)  # enabled currency codes
    currency_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    exchange_rates: dict[str, dict[str, Any]] = field(default_factory=dict)  # financial/ExchangeRates rows
    sales: dict[str, dict[str, Any]] = field(default_factory=dict)
    sales_lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    purchases: dict[str, dict[str, Any]] = field(default_factory=dict)
    purchase_lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    receivables: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_numbers: dict[str, int] = field(default_factory=dict)  # journal code -> first entry number
    hids: dict[str, int] = field(default_factory=dict)  # entry id -> HID of the Receivables/PayablesList row


@dataclass
class _Client:
    client_id: str
    secret: str
    redirect_uri: str | None
    token_calls: Counter[int] = field(default_factory=Counter)  # UTC day -> calls


@dataclass
class _Grant:
    client_id: str
    access_token: str
    access_issued: float
    refresh_token: str
    refresh_issued: float
    old_refresh: set[str] = field(default_factory=set)
    revoked: bool = False


@dataclass
class _Fault:
    status: int
    remaining: int
    endpoint: str | None
    after: bool
    retry_after: int | None
    message: str


@dataclass
class _Bucket:
    day: int = -1
    day_count: int = 0
    minute: int = -1
    minute_count: int = 0


class _GuidConverter(BaseConverter):
    regex = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


# ------------------------------------------------------------------------------------------- sandbox


class ExactSandbox:
    """The simulated Exact Online service: state, admin set-up methods and the WSGI app (``self``).

    Constructor options (defaults follow §1.2, §1.4, §1.10):

    - ``minute_limit`` / ``day_limit``: API calls per client per division per minute / UTC day (60 / 5000).
    - ``token_day_limit``: token-endpoint calls per client per UTC day (200).
    - ``page_size``: rows per OData page (60).
    - ``access_ttl`` / ``refresh_min_age``: access-token lifetime and the youngest age at which a
      refresh is allowed, seconds (600 / 570).
    - ``user_name``: the user the tokens belong to (``current/Me``).
    - ``error_limit`` / ``error_block_seconds``: more than ``error_limit`` 4xx answers (429 aside) per
      client, division and endpoint within an hour block that key for ``error_block_seconds`` (every
      call answered 403) — §1.10 (Invantive: "blocks the key for 1 h at first").

    Counters: :meth:`calls` (reads / writes / 4xx / 5xx / 429 per endpoint). Faults: :meth:`fail_next`.
    """

    def __init__(
        self,
        *,
        minute_limit: int = 60,
        day_limit: int = 5000,
        token_day_limit: int = 200,
        page_size: int = PAGE_SIZE,
        access_ttl: int = ACCESS_TTL,
        refresh_min_age: int = REFRESH_MIN_AGE,
        user_name: str = "admin@example.com",
        error_limit: int = 10,
        error_block_seconds: int = 3600,
    ) -> None:
        self.minute_limit = minute_limit
        self.day_limit = day_limit
        self.token_day_limit = token_day_limit
        self.page_size = page_size
        self.access_ttl = access_ttl
        self.refresh_min_age = refresh_min_age
        self.user_id = _new_id()
        self.user_name = user_name
        self.current_division: int | None = None
        self._divisions: dict[int, _Division] = {}
        self._clients: dict[str, _Client] = {}
        self._codes: dict[str, tuple[str, str | None, float]] = {}  # code -> (client, redirect, issued)
        self._grants: list[_Grant] = []
        self._by_access: dict[str, _Grant] = {}
        self._access_issued: dict[str, float] = {}
        self._by_refresh: dict[str, _Grant] = {}
        self._dead_refresh: dict[str, _Grant] = {}
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._faults: list[_Fault] = []
        self._stats: dict[str, Counter[str]] = {}
        self.error_limit = error_limit
        self.error_block_seconds = error_block_seconds
        self._errors: dict[tuple[str, int, str], list[float]] = {}
        self._blocked: dict[tuple[str, int, str], float] = {}
        self._lock = threading.RLock()
        self._url_map = Map(
            [
                Rule("/api/oauth2/token", endpoint="token", methods=["POST"]),
                Rule("/api/oauth2/auth", endpoint="authorize", methods=["GET"]),
                Rule("/api/v1/current/Me", endpoint="me", methods=["GET"]),
                Rule("/api/v1/<int:division>/<service>/<entity>", endpoint="collection",
                     methods=["GET", "POST"]),
                Rule("/api/v1/<int:division>/read/<service>/<entity>", endpoint="read_collection",
                     methods=["GET"]),
                Rule("/api/v1/<int:division>/<service>/<entity>(guid'<guid:key>')", endpoint="entity",
                     methods=["GET", "PUT", "DELETE"]),
                Rule("/api/v1/<int:division>/<service>/<entity>(guid'<guid:key>')/<nav>",
                     endpoint="navigation", methods=["GET"]),
            ],
            converters={"guid": _GuidConverter},
            strict_slashes=False,
        )

    # ------------------------------------------------------------------------------------ admin set-up

    def add_client(self, client_id: str, client_secret: str, redirect_uri: str | None = None) -> None:
        """Register an app (client id / secret; optional redirect URI checked on the code exchange)."""
        with self._lock:
            self._clients[client_id] = _Client(client_id, client_secret, redirect_uri)

    def add_division(
        self,
        code: int,
        *,
        description: str = "",
        currency: str = "EUR",
        country: str = "NL",
        vat_number: str | None = None,
        current: bool | None = None,
    ) -> int:
        """Create division ``code`` (administration currency ``currency``, enabled; its own rate is 1).

        The first division added becomes the user's current division (``current/Me``) unless
        ``current`` says otherwise. Returns ``code``."""
        with self._lock:
            div = _Division(int(code), description or f"Division {code}", currency, country, vat_number)
            self._divisions[div.code] = div
            self._enable_currency(div, currency, currency)
            if current or (current is None and self.current_division is None):
                self.current_division = div.code
            return div.code

    def add_gl_account(
        self,
        division: int,
        code: str,
        description: str = "",
        *,
        type: int = 110,
        balance_type: str = "W",
        balance_side: str = "C",
        vat_code: str | None = None,
        blocked: bool = False,
    ) -> str:
        """Add a GL account (§1.6; ``type`` 110 revenue, 20 AR, 22 AP, …; ``vat_code`` the default VAT
        code of lines booked on it, padded as stored). Returns its ID (guid)."""
        with self._lock:
            div = self._division(division)
            row = {
                "ID": _new_id(), "Code": str(code), "Description": description, "BalanceType": balance_type,
                "BalanceSide": balance_side, "Type": type, "TypeDescription": None, "VATCode": vat_code,
                "IsBlocked": blocked, "SearchCode": None, "Costcenter": None, "Costunit": None,
                "Division": div.code, "Created": _now_dt(), "Modified": _now_dt(),
            }
            div.gl_accounts[row["ID"]] = row
            return row["ID"]

    def add_journal(
        self,
        division: int,
        code: str,
        description: str = "",
        *,
        type: int = 20,
        currency: str | None = None,
        blocked: bool = False,
        first_entry_number: int = 1,
        gl_account: str | None = None,
    ) -> str:
        """Add a journal (§1.6 types: 20 sales, 21 sales return, 22 purchase, 23 purchase return, 10 cash,
        12 bank, 90 general). ``first_entry_number`` starts its automatic numbering. Returns its ID."""
        with self._lock:
            div = self._division(division)
            row = {
                "ID": _new_id(), "Code": str(code), "Description": description, "Type": type,
                "TypeDescription": _JOURNAL_TYPE_NAMES.get(type), "Currency": currency, "AllowVAT": True,
                "IsBlocked": blocked, "GLAccount": gl_account, "GLAccountCode": None, "Division": div.code,
            }
            div.journals[row["ID"]] = row
            div.first_numbers[row["Code"]] = first_entry_number
            return row["ID"]

    def add_vat_code(
        self,
        division: int,
        code: str,
        description: str = "",
        *,
        percentage: Decimal | str,
        transaction_type: str = "B",
        type: str = "E",
        blocked: bool = False,
    ) -> str:
        """Add a VAT code. ``code`` is stored left-aligned, space-padded to 3 chars (``"2"`` → ``"2  "``,
        §1.6); ``percentage`` is a **fraction** (``"0.21"``) as Exact returns it; ``transaction_type``
        ``S`` sales, ``P`` purchase, ``B`` both. Returns its ID. ``ValueError`` for a percentage > 1."""
        pct = Decimal(str(percentage))
        if not 0 <= pct <= 1:
            raise ValueError("percentage is a fraction between 0 and 1 (0.21 = 21 %)")
        with self._lock:
            div = self._division(division)
            row = {
                "ID": _new_id(), "Code": str(code).ljust(3), "Description": description, "Percentage": pct,
                "Type": type, "VATTransactionType": transaction_type, "IsBlocked": blocked, "GLToPay": None,
                "GLToPayCode": None, "GLToClaim": None, "GLToClaimCode": None, "Charged": False,
                "EUSalesListing": None, "Division": div.code,
            }
            div.vat_codes[row["ID"]] = row
            return row["ID"]

    def add_financial_year(
        self, division: int, year: int, start: date | None = None, end: date | None = None, periods: int = 12
    ) -> None:
        """Add a financial year to the period-date table (default: calendar year, 12 monthly periods)."""
        with self._lock:
            div = self._division(division)
            start = start or date(year, 1, 1)
            end = end or date(year, 12, 31)
            div.years.append({"year": year, "start": start, "end": end, "periods": periods})
            div.years.sort(key=lambda y: y["start"])

    def add_currency(self, division: int, code: str, rate: Decimal | str | None = None, description: str = "",
                     start: date = date(2000, 1, 1)) -> None:
        """Enable currency ``code`` in the division; ``rate`` (when given) is its exchange rate from ``start``
        on (:meth:`add_exchange_rate`). Without a rate, entries in ``code`` need their own ``Rate``."""
        with self._lock:
            self._enable_currency(self._division(division), code, description or code)
        if rate is not None:
            self.add_exchange_rate(division, code, rate, start)

    def add_exchange_rate(self, division: int, code: str, rate: Decimal | str, start: date) -> str:
        """Add a ``financial/ExchangeRates`` row: from ``start`` on, 1 ``code`` = ``rate`` units of the
        division currency (used when an entry gives no ``Rate``). Returns the row's ``ID``."""
        with self._lock:
            div = self._division(division)
            row_id, now = _new_id(), _now_dt()
            div.exchange_rates[row_id] = {
                "ID": row_id, "Rate": Decimal(str(rate)), "SourceCurrency": code, "StartDate": datetime(start.year, start.month, start.day),
                "TargetCurrency": div.currency, "SourceCurrencyDescription": code, "TargetCurrencyDescription": div.currency,
                "Division": div.code, "Created": now, "Modified": now,
            }
            return row_id

    def add_account(
        self,
        division: int,
        name: str,
        *,
        code: str | int | None = None,
        is_sales: bool = True,
        is_supplier: bool = False,
        status: str | None = None,
        blocked: bool = False,
        **fields: Any,
    ) -> str:
        """Create a relation directly (as the admin in the UI would); same rules as ``POST crm/Accounts``.
        Extra ``fields`` use Exact's names (``VATNumber``, ``Email``, …). Returns its ID."""
        body: dict[str, Any] = {"Name": name, "IsSales": is_sales, "IsSupplier": is_supplier, "Blocked": blocked,
                                **fields}
        if code is not None:
            body["Code"] = str(code)
        if status is not None:
            body["Status"] = status
        with self._lock:
            return self._create_account(self._division(division), body)["ID"]

    def seed_demo(
        self, division: int, *, description: str = "Demo BV", years: Iterable[int] | None = None
    ) -> dict[str, str]:
        """Create ``division`` with a small Dutch chart: GL 8000/8010/8020 revenue, 7000/7010 costs, 1300
        debtors, 1600 creditors; journals 70 (sales, 20), 71 (sales return, 21), 60 (purchase, 22), 61
        (purchase return, 23), 20 (bank, 12), 90 (general); VAT codes ``0`` 0 % B, ``1`` 9 % S, ``2`` 21 % S,
        ``4`` 9 % P, ``5`` 21 % P; financial years around the clock's year; USD and GBP enabled.
        Returns name → ID of what it created (``gl:8000``, ``journal:70``, ``vat:2``)."""
        ids: dict[str, str] = {}
        if division not in self._divisions:
            self.add_division(division, description=description)
        for code, pct, usage, desc in (("0", "0", "B", "0% / exempt"), ("1", "0.09", "S", "Sales low 9%"),
                                       ("2", "0.21", "S", "Sales high 21%"), ("4", "0.09", "P", "Purchase low 9%"),
                                       ("5", "0.21", "P", "Purchase high 21%")):
            ids[f"vat:{code}"] = self.add_vat_code(division, code, desc, percentage=pct, transaction_type=usage)
        for code, desc, type_, bt, vat in (("8000", "Revenue high", 110, "W", "2  "),
                                           ("8010", "Revenue low", 110, "W", "1  "),
                                           ("8020", "Revenue exempt", 110, "W", "0  "),
                                           ("7000", "Purchases high", 111, "W", "5  "),
                                           ("7010", "Purchases low", 111, "W", "4  "),
                                           ("1300", "Debtors", 20, "B", None), ("1600", "Creditors", 22, "B", None)):
            ids[f"gl:{code}"] = self.add_gl_account(division, code, desc, type=type_, balance_type=bt, vat_code=vat)
        for code, desc, type_ in (("70", "Sales", 20), ("71", "Sales returns", 21), ("60", "Purchase", 22),
                                  ("61", "Purchase returns", 23), ("20", "Bank", 12), ("90", "General", 90)):
            ids[f"journal:{code}"] = self.add_journal(division, code, desc, type=type_)
        this_year = datetime.fromtimestamp(_now(), tz=UTC).year
        for year in years if years is not None else range(this_year - 2, this_year + 2):
            self.add_financial_year(division, year)
        self.add_currency(division, "USD", "0.92", "US dollar")
        self.add_currency(division, "GBP", "1.17", "Pound sterling")
        return ids

    # ------------------------------------------------------------------------------ tokens for tests

    def authorize(self, client_id: str, redirect_uri: str | None = None) -> str:
        """The user consents: return a single-use authorization code (lives 180 s)."""
        with self._lock:
            if client_id not in self._clients:
                raise KeyError(f"unknown client {client_id}")
            code = secrets.token_urlsafe(24)
            self._codes[code] = (client_id, redirect_uri, _now())
            return code

    def issue_tokens(self, client_id: str) -> tuple[str, str]:
        """Consent + code exchange in one step (counts as one token call): ``(access, refresh)``."""
        with self._lock:
            client = self._clients[client_id]
            client.token_calls[self._day(_now())] += 1
            grant = self._new_grant(client_id)
            return grant.access_token, grant.refresh_token

    def expire_access_tokens(self, client_id: str | None = None) -> None:
        """Make every live access token (of ``client_id``, or all) expired now; refreshes become allowed."""
        with self._lock:
            past = _now() - self.access_ttl - 1
            for grant in self._grants:
                if client_id in (None, grant.client_id):
                    grant.access_issued = past
            for token, grant in self._by_access.items():
                if client_id in (None, grant.client_id):
                    self._access_issued[token] = past

    def revoke_tokens(self, client_id: str | None = None) -> None:
        """The user disconnects the app: every token of ``client_id`` (or all) stops working."""
        with self._lock:
            for grant in self._grants:
                if client_id in (None, grant.client_id):
                    grant.revoked = True

    # -------------------------------------------------------------------------------- faults, counters

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        endpoint: str | None = None,
        after: bool = False,
        retry_after: int | None = None,
        message: str = "Simulated failure",
    ) -> None:
        """Answer the next ``count`` API calls (those whose path contains ``endpoint``, e.g.
        ``"salesentry/SalesEntries"`` or ``"oauth2/token"``; ``None`` = any API call but the token
        endpoint) with ``status`` and the error envelope. ``after=True`` processes the call first and
        then replaces its answer (a write that happened but whose answer was lost). Faulted calls pass
        authentication and count against the rate limits."""
        with self._lock:
            self._faults.append(_Fault(status, count, endpoint, after, retry_after, message))

    def calls(self, endpoint: str | None = None) -> Counter[str]:
        """Counters ``reads`` (GET), ``writes`` (POST/PUT/DELETE), ``4xx``, ``5xx``, ``429`` for one
        endpoint (``"crm/Accounts"``, ``"current/Me"``, ``"oauth2/token"``) or summed over all."""
        with self._lock:
            if endpoint is not None:
                return Counter(self._stats.get(endpoint, Counter()))
            total: Counter[str] = Counter()
            for counter in self._stats.values():
                total.update(counter)
            return total

    def reset_calls(self) -> None:
        """Zero the counters (not the rate-limit windows)."""
        with self._lock:
            self._stats.clear()

    # ------------------------------------------------------------------------------- state accessors

    def sales_entries(self, division: int) -> list[dict[str, Any]]:
        """Sales entries of ``division`` (copies, creation order), each with its lines under
        ``SalesEntryLines`` (a list), its first receivable row under ``Receivable`` and all of them (more
        than one after a partial payment) under ``Receivables``."""
        return self._entries(division, _SALES)

    def purchase_entries(self, division: int) -> list[dict[str, Any]]:
        """Purchase entries of ``division`` (copies, creation order), lines under ``PurchaseEntryLines``,
        the first cashflow/Payments row under ``Payment`` and all of them under ``Payments``."""
        return self._entries(division, _PURCHASE)

    def accounts(self, division: int) -> list[dict[str, Any]]:
        """Relations (crm/Accounts rows, copies) of ``division``."""
        with self._lock:
            return [dict(row) for row in self._division(division).accounts.values()]

    def bookkeeper_delete(self, entry_id: str) -> None:
        """A bookkeeper deletes a sales / purchase entry in Exact (with its lines and open items)."""
        with self._lock:
            for div in self._divisions.values():
                for store, lines in (("sales", "sales_lines"), ("purchases", "purchase_lines")):
                    if entry_id in getattr(div, store):
                        del getattr(div, store)[entry_id]
                        for key in [k for k, v in getattr(div, lines).items() if v["EntryID"] == entry_id]:
                            del getattr(div, lines)[key]
                        return
            raise KeyError(entry_id)

    def bookkeeper_edit(self, entry_id: str, delta: Decimal | str) -> None:
        """A bookkeeper changes the first line of an entry by ``delta`` (excl. VAT, entry's own sign);
        the entry's totals follow."""
        delta = Decimal(str(delta))
        with self._lock:
            entry, own = self._entry_and_lines(entry_id)
            own[0]["AmountFC"] = Decimal(str(own[0]["AmountFC"])) + delta
            entry["AmountFC"] = Decimal(str(entry["AmountFC"])) + delta

    def _entry_and_lines(self, entry_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The sales or purchase entry ``entry_id`` of any division and its lines (``KeyError`` when
        there is none); the caller holds the lock."""
        for div in self._divisions.values():
            for store, lines in (("sales", "sales_lines"), ("purchases", "purchase_lines")):
                entry = getattr(div, store).get(entry_id)
                if entry is not None:
                    return entry, [v for v in getattr(div, lines).values() if v["EntryID"] == entry_id]
        raise KeyError(entry_id)

    def bookkeeper_set_rate(self, entry_id: str, rate: Decimal | str) -> None:
        """A bookkeeper changes the exchange rate of an entry: its amounts in the division currency follow
        (each line ``round(FC × Rate, 2)``), the amounts in the entry's currency stay."""
        rate = Decimal(str(rate))
        with self._lock:
            entry, own = self._entry_and_lines(entry_id)
            for ln in own:
                ln.update(AmountDC=round_money(ln["AmountFC"] * rate), VATAmountDC=round_money(ln["VATAmountFC"] * rate),
                          VATBaseAmountDC=round_money(ln["AmountFC"] * rate))
            entry.update(Rate=rate, AmountDC=sum((ln["AmountDC"] + ln["VATAmountDC"] for ln in own), Decimal(0)),
                         VATAmountDC=sum((ln["VATAmountDC"] for ln in own), Decimal(0)))

    def mark_paid(self, entry_id: str, paid_on: date | None = None, *, amount: Decimal | str | None = None) -> None:
        """Record a payment on the receivable (sales entry) or payable (purchase entry) ``entry_id``.

        ``amount`` is positive, in the entry's currency (default: all that is open). Paying everything
        that is open matches the open row(s): ``Status`` 50, ``EndDate`` (and on receivables
        ``IsFullyPaid`` true, ``LastPaymentDate``) = ``paid_on`` (default today). A partial payment splits
        the open row, as Exact does ("a receivable can be split so that one part is received on a
        different date"): a matched row of ``amount`` (new ``ID`` and ``EntryID``, same
        ``TransactionEntryID``) and the open rest (``Status`` 20). Amounts keep the entry's sign (a credit
        note's rows are negative). ``KeyError`` when no division holds the entry; ``ValueError`` for an
        amount that is not positive or exceeds what is open, or when nothing is open."""
        when = parse_date_value(paid_on) if paid_on else _now_dt().replace(hour=0, minute=0, second=0,
                                                                              microsecond=0)
        with self._lock:
            for div in self._divisions.values():
                for store in (div.receivables, div.payments):
                    rows = [r for r in store.values() if r["TransactionEntryID"] == entry_id.lower()]
                    if rows:
                        self._pay(div, store, rows, when, None if amount is None else Decimal(str(amount)))
                        return
        raise KeyError(entry_id)

    def _pay(self, div: _Division, store: dict[str, dict[str, Any]], rows: list[dict[str, Any]], when: datetime,
             amount: Decimal | None) -> None:
        open_rows = [r for r in rows if r["Status"] != 50]
        open_total = sum((r["AmountFC"] for r in open_rows), Decimal(0))
        if not open_rows:
            raise ValueError("nothing is open on this entry")
        if amount is not None and (amount <= 0 or amount > abs(open_total)):
            raise ValueError(f"cannot pay {amount}: {abs(open_total)} is open")
        year = next((y for y in div.years if y["start"] <= when.date() <= y["end"]), None)
        end_year, end_period = (year["year"], self._period(year, when.date())) if year else (when.year, when.month)
        matched = {"Status": 50, "EndDate": when, "EndYear": end_year, "EndPeriod": end_period}
        if "IsFullyPaid" in open_rows[0]:
            matched.update(IsFullyPaid=True, LastPaymentDate=when)
        remaining = abs(open_total) if amount is None else amount
        for row in open_rows:
            if remaining <= 0:
                break
            take = min(remaining, abs(row["AmountFC"]))
            remaining -= take
            if take == abs(row["AmountFC"]):
                row.update(matched)
                continue
            paid = take if row["AmountFC"] >= 0 else -take
            part = dict(row, ID=_new_id(), EntryID=_new_id(), AmountFC=paid,
                        AmountDC=round_money(paid * (row["RateFC"] or Decimal(1))), **matched)
            store[part["ID"]] = part
            row["AmountFC"] -= paid
            row["AmountDC"] -= part["AmountDC"]
            if "LastPaymentDate" in row:
                row["LastPaymentDate"] = when

    # ------------------------------------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Route and answer one request (thread-safe: requests are served one at a time)."""
        urls = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = urls.match()
        except MethodNotAllowed:
            return self._json(_error_body("Method not allowed"), 405)
        except NotFound:
            return self._json(_error_body("Not found"), 404)
        except HTTPException as exc:  # pragma: no cover - other routing errors
            return self._json(_error_body(exc.description or "Bad request"), exc.code or 400)
        with self._lock:
            if endpoint == "token":
                return self._token(request)
            if endpoint == "authorize":
                return self._authorize_redirect(request)
            return self._api(request, endpoint, args)

    # -------------------------------------------------------------------------------------- OAuth2

    def _authorize_redirect(self, request: Request) -> Response:
        client_id = request.args.get("client_id", "")
        redirect_uri = request.args.get("redirect_uri")
        if client_id not in self._clients or request.args.get("response_type") != "code" or not redirect_uri:
            return self._json({"error": "invalid_request"}, 400)
        code = self.authorize(client_id, redirect_uri)
        params = {"code": code}
        if "state" in request.args:
            params["state"] = request.args["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return Response(status=302, headers={"Location": redirect_uri + sep + urlencode(params)})

    def _token(self, request: Request) -> Response:
        self._stat("oauth2/token", "writes")
        form = request.form
        client_id = form.get("client_id") or (request.authorization.username if request.authorization else None)
        secret = form.get("client_secret") or (request.authorization.password if request.authorization else None)
        grant_type = form.get("grant_type")
        if not grant_type or not client_id:
            return self._token_error(400, "invalid_request")
        client = self._clients.get(client_id)
        if client is None or secret != client.secret:
            return self._token_error(400, "invalid_client")
        now = _now()
        day = self._day(now)
        client.token_calls[day] += 1
        if client.token_calls[day] > self.token_day_limit:
            retry = math.ceil((day + 1) * 86400 - now)
            return self._token_error(429, "too_many_requests", headers={"Retry-After": str(retry)})
        fault = self._take_fault("oauth2/token", token=True)
        if fault is not None:
            return self._fault_response(fault, {})
        if grant_type == "authorization_code":
            code = form.get("code", "")
            found = self._codes.pop(code, None)
            if found is None or found[0] != client_id or now - found[2] > CODE_TTL:
                return self._token_error(400, "invalid_grant")
            if found[1] is not None and form.get("redirect_uri") not in (None, found[1]):
                return self._token_error(400, "invalid_grant")
            grant = self._new_grant(client_id)
        elif grant_type == "refresh_token":
            token = form.get("refresh_token", "")
            if not token:
                return self._token_error(400, "invalid_request")
            grant = self._by_refresh.get(token)
            if grant is None:
                dead = self._dead_refresh.get(token)
                if dead is not None and dead.client_id == client_id:
                    return self._token_error(400, "invalid_grant", "Old refresh token used.")
                return self._token_error(400, "invalid_grant")
            if grant.client_id != client_id or grant.revoked or now - grant.refresh_issued > REFRESH_TTL:
                return self._token_error(400, "invalid_grant")
            if now - grant.access_issued < self.refresh_min_age:
                resp = self._token_error(401, "invalid_request", "Access Token not expired")
                resp.headers["Reason"] = "Access Token not expired"
                return resp
            self._rotate(grant)
        else:
            return self._token_error(400, "unsupported_grant_type")
        body = {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": str(self.access_ttl),
            "refresh_token": grant.refresh_token,
        }
        return self._json(body, 200, stat="oauth2/token")

    def _token_error(self, status: int, error: str, description: str | None = None,
                     headers: Mapping[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"error": error}
        if description:
            body["error_description"] = description
        return self._json(body, status, headers=headers, stat="oauth2/token")

    def _new_grant(self, client_id: str) -> _Grant:
        now = _now()
        grant = _Grant(client_id, secrets.token_urlsafe(48), now, secrets.token_urlsafe(48), now)
        self._grants.append(grant)
        self._by_access[grant.access_token] = grant
        self._access_issued[grant.access_token] = now
        self._by_refresh[grant.refresh_token] = grant
        return grant

    def _rotate(self, grant: _Grant) -> None:
        now = _now()
        del self._by_refresh[grant.refresh_token]
        grant.old_refresh.add(grant.refresh_token)
        self._dead_refresh[grant.refresh_token] = grant
        grant.access_token = secrets.token_urlsafe(48)
        grant.access_issued = now
        grant.refresh_token = secrets.token_urlsafe(48)
        grant.refresh_issued = now
        self._by_access[grant.access_token] = grant
        self._access_issued[grant.access_token] = now
        self._by_refresh[grant.refresh_token] = grant

    # ----------------------------------------------------------------------------------------- API

    def _api(self, request: Request, endpoint: str, args: dict[str, Any]) -> Response:
        name = "current/Me" if endpoint == "me" else f"{args['service']}/{args['entity']}"
        if endpoint == "read_collection":
            name = f"read/{name}"
        self._stat(name, "reads" if request.method == "GET" else "writes")
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        grant = self._by_access.get(token) if token else None
        now = _now()
        if grant is None or grant.revoked:
            return self._unauthorized(name, "Access token invalid")
        if now - self._access_issued[token] >= self.access_ttl:
            return self._unauthorized(name, "Access token expired")
        division = args.get("division", self.current_division)
        if division not in self._divisions:
            return self._json(_error_body(f"Forbidden: no access to division {division}"), 403, stat=name)
        bucket = self._buckets.setdefault((grant.client_id, division), _Bucket())
        self._roll(bucket, now)
        if bucket.day_count >= self.day_limit or bucket.minute_count >= self.minute_limit:
            daily = bucket.day_count >= self.day_limit
            reset = (bucket.day + 1) * 86400 if daily else (bucket.minute + 1) * 60
            which = f"daily limit of {self.day_limit}" if daily else f"minutely limit of {self.minute_limit}"
            headers = self._rate_headers(bucket)
            headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
            return self._json(_error_body(f"Too many requests: the {which} calls is exceeded"), 429,
                              headers=headers, stat=name)
        errors = self._errors.setdefault((grant.client_id, division, name), [])
        errors[:] = [t for t in errors if now - t < 3600]
        blocked_until = self._blocked.get((grant.client_id, division, name), 0.0)
        if blocked_until > now:
            return self._json(_error_body(f"Forbidden: the API key is blocked for {name} until "
                                          f"{datetime.fromtimestamp(blocked_until, tz=UTC).isoformat()}: more than "
                                          f"{self.error_limit} errors in an hour"), 403, stat=name)
        bucket.day_count += 1
        bucket.minute_count += 1
        headers = self._rate_headers(bucket)
        fault = self._take_fault(name)
        if fault is not None and not fault.after:
            return self._fault_response(fault, headers, stat=name)
        div = self._divisions[division]
        try:
            response = self._handle(request, endpoint, args, div, name)
        except _Reject as rej:
            response = self._json(_error_body(rej.message), rej.status, headers=rej.headers)
        except ODataError as exc:
            response = self._json(_error_body(str(exc)), 400)
        if fault is not None:
            return self._fault_response(fault, headers, stat=name)
        response.headers.extend(headers)
        self._count_status(name, response.status_code)
        if 400 <= response.status_code < 500 and response.status_code != 429:
            errors.append(now)
            if len(errors) > self.error_limit:  # §1.10: more than 10 errors an hour blocks the key
                self._blocked[(grant.client_id, division, name)] = now + self.error_block_seconds
        return response

    def _handle(self, request: Request, endpoint: str, args: dict[str, Any], div: _Division, name: str) -> Response:
        if endpoint == "me":
            return self._me(request, div)
        spec = _SPECS.get(name)
        if spec is None:
            raise _Reject(404, f"Not found: {name}")
        if endpoint in ("collection", "read_collection"):
            if request.method == "GET":
                return self._list(request, div, spec, self._rows(div, spec))
            if name == "crm/Accounts":
                return self._json({"d": self._shape(request, div, spec, self._create_account(div, self._body(request)),
                                                    None, expand=False)}, 201)
            if name == _SALES.spec:
                return self._post_entry(request, div, _SALES)
            if name == _PURCHASE.spec:
                return self._post_entry(request, div, _PURCHASE)
            raise _Reject(405, "Method not allowed")
        key = str(args["key"]).lower()
        row = self._rows(div, spec).get(key)
        if row is None:
            raise _Reject(404, f"Not found: {spec.path}(guid'{key}')")
        if endpoint == "navigation":
            if spec.nav is None or args["nav"] != spec.nav:
                raise _Reject(404, f"Not found: {args['nav']}")
            line_spec = _SPECS[spec.path.replace("Entries", "EntryLines")]
            lines = {k: v for k, v in getattr(div, spec.nav_store or "").items() if v["EntryID"] == key}
            return self._list(request, div, line_spec, lines)
        if request.method == "GET":
            select = self._select(request, spec)
            expand = request.args.get("$expand", "") == spec.nav if spec.nav else False
            return self._json({"d": self._shape(request, div, spec, row, select, expand=expand)}, 200)
        if request.method == "PUT" and name == "crm/Accounts":
            self._update_account(div, row, self._body(request))
            return Response(status=204)
        raise _Reject(405, "Method not allowed")

    def _me(self, request: Request, div: _Division) -> Response:
        row = {
            "CurrentDivision": div.code, "AccountingDivision": div.code, "UserID": self.user_id,
            "UserName": self.user_name, "FullName": self.user_name.split("@")[0], "Email": self.user_name,
            "LanguageCode": "en-US", "DivisionCustomerVatNumber": div.vat_number, "ServerTime": _now_dt(),
        }
        select = request.args.get("$select")
        if select:
            names = [s.strip() for s in select.split(",") if s.strip()]
            for n in names:
                if n not in _ME_FIELDS:
                    raise ODataError(f"Error in query syntax: no property '{n}' exists in this entity")
            row = {n: row[n] for n in names}
        meta = {"uri": f"{request.host_url.rstrip('/')}/api/v1/current/Me(guid'{self.user_id}')",
                "type": _MODEL + "System.Me"}
        return self._json({"d": {"results": [{"__metadata": meta, **row}]}}, 200)

    # ------------------------------------------------------------------------------------ OData read

    _QUERY_OPTIONS = {"$filter", "$select", "$top", "$skiptoken", "$expand", "$format"}

    @staticmethod
    def _periods(div: _Division) -> dict[Any, dict[str, Any]]:
        """``financial/FinancialPeriods``: the period-date table (calendar months of each book year)."""
        rows: dict[Any, dict[str, Any]] = {}
        for year in div.years:
            start, periods = year["start"], int(year["periods"])
            for n in range(periods):
                first = date(start.year + (start.month - 1 + n) // 12, (start.month - 1 + n) % 12 + 1, 1)
                nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
                last = min(nxt - timedelta(days=1), year["end"]) if n == periods - 1 else nxt - timedelta(days=1)
                key = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{div.code}/{year['year']}/{n + 1}"))
                rows[key] = {"ID": key, "FinYear": year["year"], "FinPeriod": n + 1, "StartDate": datetime(first.year, first.month, first.day, tzinfo=UTC),
                             "EndDate": datetime(last.year, last.month, last.day, tzinfo=UTC), "Division": div.code}
        return rows

    def _rows(self, div: _Division, spec: _Spec) -> dict[Any, dict[str, Any]]:
        if spec.store.startswith("_open:"):
            return self._open_list(div, spec.store.removeprefix("_open:"))
        if spec.store == "_periods":
            return self._periods(div)
        if spec.store == "_divisions":
            return {d.code: {"Code": d.code, "Description": d.description, "Currency": d.currency,
                             "Country": d.country, "VATNumber": d.vat_number} for d in self._divisions.values()}
        return getattr(div, spec.store)

    @staticmethod
    def _open_list(div: _Division, store: str) -> dict[int, dict[str, Any]]:
        """ReceivablesList / PayablesList rows: one per entry with an open amount (the unmatched open
        items summed), keyed by ``HID``; fully matched entries are not listed (§1.9)."""
        rows: dict[int, dict[str, Any]] = {}
        for item in getattr(div, store).values():
            if item["Status"] == 50:
                continue
            hid = div.hids[item["TransactionEntryID"]]
            row = rows.get(hid)
            if row is None:
                rows[hid] = {
                    "HID": hid, "AccountId": item["Account"], "AccountCode": item["AccountCode"],
                    "AccountName": item["AccountName"], "Amount": item["AmountFC"], "AmountInTransit": Decimal(0),
                    "CurrencyCode": item["Currency"], "Description": item["Description"], "DueDate": item["DueDate"],
                    "EntryNumber": item["EntryNumber"], "InvoiceDate": item["InvoiceDate"],
                    "InvoiceNumber": item["InvoiceNumber"], "JournalCode": item["Journal"],
                    "JournalDescription": item["JournalDescription"], "YourRef": item["YourRef"],
                }
            else:
                row["Amount"] += item["AmountFC"]
        return rows

    def _select(self, request: Request, spec: _Spec) -> list[str] | None:
        text = request.args.get("$select")
        if not text:
            return None
        names = [s.strip() for s in text.split(",") if s.strip()]
        for n in names:
            if n not in spec.fields and n != spec.nav and n != "*":
                raise ODataError(f"Error in query syntax: no property '{n}' exists in this entity")
        return None if "*" in names else names

    def _list(self, request: Request, div: _Division, spec: _Spec, rows: Mapping[Any, dict[str, Any]]) -> Response:
        for option in request.args:
            if option.startswith("$") and option not in self._QUERY_OPTIONS:
                raise _bad(f"Error in query syntax: the query option '{option}' is not supported")
        if request.args.get("$format", "json") != "json":
            raise _bad("Error in query syntax: only $format=json is supported")
        select = self._select(request, spec)
        expand_text = request.args.get("$expand", "")
        if expand_text and expand_text != spec.nav:
            raise ODataError(f"Error in query syntax: cannot expand '{expand_text}'")
        selected = sorted(rows.values(), key=lambda r: r[spec.key])
        if "$filter" in request.args:
            predicate = parse_filter(request.args["$filter"], spec.fields)
            selected = [r for r in selected if predicate(r)]
        top: int | None = None
        if "$top" in request.args:
            raw = request.args["$top"].strip()
            if not raw.isdigit():
                raise ODataError("Error in query syntax: $top must be a non-negative integer")
            top = int(raw)
        if "$skiptoken" in request.args:
            after = parse_literal(request.args["$skiptoken"])
            if isinstance(after, str):
                after = after.lower()
            selected = [r for r in selected if r[spec.key] > after]
        limit = self.page_size if top is None else min(top, self.page_size)
        page = selected[:limit]
        body: dict[str, Any] = {"results": [self._shape(request, div, spec, r, select, expand=bool(expand_text))
                                            for r in page]}
        more = len(selected) > limit and (top is None or top > limit)
        if more and page:
            params = {k: v for k, v in request.args.items() if k not in ("$skiptoken", "$top")}
            if top is not None:
                params["$top"] = str(top - limit)
            params["$skiptoken"] = format_literal(page[-1][spec.key], spec.fields[spec.key])
            body["__next"] = request.base_url + "?" + urlencode(params, quote_via=quote, safe="$,'()")
        return self._json({"d": body}, 200)

    def _shape(self, request: Request, div: _Division, spec: _Spec, row: Mapping[str, Any],
               select: list[str] | None, *, expand: bool) -> dict[str, Any]:
        base = f"{request.host_url.rstrip('/')}/api/v1/{div.code}/{spec.path}"
        key_literal = format_literal(row[spec.key], spec.fields[spec.key])
        out: dict[str, Any] = {"__metadata": {"uri": f"{base}({key_literal})", "type": spec.type_name}}
        names = select if select is not None else [*spec.fields, *([spec.nav] if spec.nav else [])]
        for name in names:
            if name == spec.nav:
                if expand:
                    line_spec = _SPECS[spec.path.replace("Entries", "EntryLines")]
                    lines = [v for v in getattr(div, spec.nav_store or "").values() if v["EntryID"] == row[spec.key]]
                    lines.sort(key=lambda v: v["LineNumber"])
                    out[name] = {"results": [self._shape(request, div, line_spec, v, None, expand=False)
                                             for v in lines]}
                else:
                    out[name] = {"__deferred": {"uri": f"{base}({key_literal})/{spec.nav}"}}
            else:
                out[name] = row.get(name)
        return out

    # ------------------------------------------------------------------------------------ accounts

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = loads(request.get_data() or b"")
        except ValueError:
            raise _bad("Error in body: the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _bad("Error in body: a JSON object is expected")
        return body

    @staticmethod
    def _unknown(body: Mapping[str, Any], allowed: Iterable[str], type_name: str) -> None:
        allowed = set(allowed) | {"__metadata"}
        for name in body:
            if name not in allowed:
                raise _bad(f"Invalid: property '{name}' does not exist on type '{type_name}'")

    def _account_code(self, div: _Division, value: Any, exclude: str | None = None) -> str:
        code = str(value).strip() if not isinstance(value, Decimal) else str(int(value))
        if not code.isdigit() or len(code) > 18:
            raise _bad(f"Invalid: Code: '{value}' (numeric, at most 18 digits)")
        padded = code.rjust(18)
        for row in div.accounts.values():
            if row["Code"] == padded and row["ID"] != exclude:
                raise _bad(f"Already exists – Code: {code}")
        return padded

    def _check_account_values(self, body: Mapping[str, Any]) -> None:
        for flag in ("IsSales", "IsSupplier", "Blocked"):
            if flag in body and not isinstance(body[flag], bool):
                raise _bad(f"Invalid: {flag}: {body[flag]!r}")
        if body.get("Status") not in (None, "A", "S", "P", "C"):
            raise _bad(f"Invalid: Status: {body['Status']!r}")
        country = body.get("Country")
        if country not in (None, "") and not (isinstance(country, str) and len(country) == 2 and country.isalpha()):
            raise _bad(f"Invalid: Country: {country!r}")
        for name, value in body.items():
            if _ACCOUNT_FIELDS.get(name) == S and value is not None and not isinstance(value, str):
                raise _bad(f"Invalid: {name}: {value!r}")

    def _create_account(self, div: _Division, body: Mapping[str, Any]) -> dict[str, Any]:
        self._unknown(body, _ACCOUNT_WRITABLE, _MODEL + "CRM.Account")
        name = body.get("Name")
        if not isinstance(name, str) or not name.strip():
            raise _bad("Mandatory: Name")
        self._check_account_values(body)
        if body.get("Code") not in (None, ""):
            code = self._account_code(div, body["Code"])
        else:
            numbers = [int(r["Code"]) for r in div.accounts.values() if r["Code"].strip().isdigit()]
            code = str(max(numbers, default=0) + 1).rjust(18)
        row: dict[str, Any] = dict.fromkeys(_ACCOUNT_FIELDS)
        row.update({k: v for k, v in body.items() if k != "__metadata"})
        is_sales = bool(body.get("IsSales", False))
        row.update(
            ID=_new_id(), Code=code, Name=name, IsSales=is_sales, IsSupplier=bool(body.get("IsSupplier", False)),
            Status=body.get("Status") or ("C" if is_sales else "A"), Blocked=bool(body.get("Blocked", False)),
            Type=body.get("Type") or "A", Division=div.code, Created=_now_dt(), Modified=_now_dt(),
        )
        div.accounts[row["ID"]] = row
        return row

    def _update_account(self, div: _Division, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        self._unknown(body, _ACCOUNT_WRITABLE, _MODEL + "CRM.Account")
        if "Name" in body and (not isinstance(body["Name"], str) or not body["Name"].strip()):
            raise _bad("Mandatory: Name")
        self._check_account_values(body)
        changes = {k: v for k, v in body.items() if k != "__metadata"}
        if "Code" in changes:
            changes["Code"] = self._account_code(div, changes["Code"], exclude=row["ID"])
        row.update(changes)
        row["Modified"] = _now_dt()

    # ------------------------------------------------------------------------------------- entries

    def _post_entry(self, request: Request, div: _Division, kind: _EntryKind) -> Response:
        spec = _SPECS[kind.spec]
        body = self._body(request)
        self._unknown(body, _HEADER_WRITABLE_BASE | {kind.relation, kind.lines}, spec.type_name)

        # Type and journal (§1.6 journal types, §1.7 Type, §1.8)
        entry_type = _int(body["Type"], "Type") if body.get("Type") is not None else kind.default_type
        if entry_type not in kind.journal_types:
            raise _bad(f"Invalid: Type: {entry_type} (allowed: {', '.join(map(str, kind.journal_types))})")
        journal_code = body.get("Journal")
        if journal_code in (None, ""):
            raise _bad("Mandatory: Journal")
        journal_code = str(journal_code)
        journal = next((j for j in div.journals.values() if j["Code"] == journal_code), None)
        if journal is None:
            raise _bad(f"Not found: Journal: {journal_code}")
        if journal["IsBlocked"]:
            raise _bad(f"Blocked: Journal: {journal_code}")
        if journal["Type"] not in kind.journal_types[entry_type]:
            raise _bad(f"Invalid: Journal (Type) – Journal: {journal_code} (type {journal['Type']}) cannot hold "
                       f"entries of type {entry_type}")

        # Relation (§1.11 "Mandatory: Account", "Invalid: Customer (Type)")
        relation_id = body.get(kind.relation)
        if relation_id in (None, ""):
            raise _bad("Mandatory: Account")
        if not _is_guid(relation_id):
            raise _bad(f"Invalid: {kind.relation}: '{relation_id}' is not a guid")
        account = div.accounts.get(relation_id.lower())
        if account is None:
            raise _bad(f"Not found: Account: {relation_id}")
        if not account[kind.relation_flag]:
            raise _bad(f"Invalid: {kind.relation} (Type)")
        if account.get("Blocked"):
            raise _bad(f"Blocked: Account: {account['Code'].strip()}")

        # Dates and period table (§1.7, §1.11 "Unknown: Financial year (Period-date table)")
        if body.get("EntryDate") in (None, ""):
            raise _bad("Mandatory: Entry date")
        try:
            entry_date = parse_date_value(body["EntryDate"])
        except ValueError:
            raise _bad(f"Invalid: Entry date: {body['EntryDate']!r}") from None
        year_row = next((y for y in div.years if y["start"] <= entry_date.date() <= y["end"]), None)
        if year_row is None:
            raise _bad("Unknown: Financial year (Period-date table)")
        period = self._period(year_row, entry_date.date())
        reporting_year, reporting_period = year_row["year"], period
        if body.get("ReportingYear") is not None or body.get("ReportingPeriod") is not None:
            reporting_year = _int(body.get("ReportingYear", year_row["year"]), "ReportingYear")
            reporting_period = _int(body.get("ReportingPeriod", period), "ReportingPeriod")
            target = next((y for y in div.years if y["year"] == reporting_year), None)
            if target is None or not 1 <= reporting_period <= target["periods"]:
                raise _bad("Unknown: Financial year (Period-date table)")
        due_date = entry_date + timedelta(days=30)
        if body.get("DueDate") not in (None, ""):
            try:
                due_date = parse_date_value(body["DueDate"])
            except ValueError:
                raise _bad(f"Invalid: Due date: {body['DueDate']!r}") from None

        # Currency and rate
        currency = body.get("Currency") or div.currency
        if currency not in div.currencies:
            raise _bad(f"Invalid: Currency: {currency} (not enabled in this administration)")
        if body.get("Rate") is not None:
            rate = _decimal(body["Rate"], "Rate")
            if rate <= 0:
                raise _bad(f"Invalid: Rate: {rate}")
        elif currency == div.currency:
            rate = Decimal(1)
        else:
            rows = [r for r in div.exchange_rates.values()
                    if r["SourceCurrency"] == currency and r["StartDate"] <= entry_date]
            if not rows:
                raise _bad(f"Invalid: Rate – no exchange rate for {currency} on {entry_date.date().isoformat()}")
            rate = max(rows, key=lambda r: r["StartDate"])["Rate"]

        # Entry number (§1.11 "Already exists – Entry number: n, Journal: code", §1.12)
        numbers = [e["EntryNumber"] for store in (div.sales, div.purchases) for e in store.values()
                   if e["Journal"] == journal_code]
        if body.get("EntryNumber") is not None:
            entry_number = _int(body["EntryNumber"], "Entry number")
            if entry_number <= 0:
                raise _bad(f"Invalid: Entry number: {entry_number}")
            if entry_number in numbers:
                raise _bad(f"Already exists – Entry number: {entry_number}, Journal: {journal_code}")
        else:
            entry_number = max(max(numbers, default=0) + 1, div.first_numbers.get(journal_code, 1))

        # Lines (§1.7 SalesEntryLines)
        raw_lines = body.get(kind.lines)
        if isinstance(raw_lines, dict) and isinstance(raw_lines.get("results"), list):
            raw_lines = raw_lines["results"]
        if raw_lines is not None and not isinstance(raw_lines, list):
            raise _bad(f"Error in body: {kind.lines} must be an array")
        if not raw_lines:
            raise _bad(f"Mandatory: Lines ({kind.lines})")
        lines = [self._line(div, kind, raw, n) for n, raw in enumerate(raw_lines, 1)]
        amount = sum((ln["AmountFC"] + ln["VATAmountFC"] for ln in lines), Decimal(0))
        vat = sum((ln["VATAmountFC"] for ln in lines), Decimal(0))
        if entry_type == kind.credit_type and amount > 0:
            raise _bad(f"Invalid: Amount – a credit note (Type {entry_type}) needs negative amounts")
        if body.get("AmountFC") is not None:
            header = _two_places(_decimal(body["AmountFC"], "AmountFC"), "AmountFC")
            if header != amount:
                raise _bad(f"Invalid: Amount – the entry is not balanced: AmountFC {header} differs from the "
                           f"lines incl. VAT {amount}")
        if body.get("VATAmountFC") is not None:
            header_vat = _two_places(_decimal(body["VATAmountFC"], "VATAmountFC"), "VATAmountFC")
            if header_vat != vat:
                raise _bad(f"Invalid: VAT amount – the entry is not balanced: VATAmountFC {header_vat} differs "
                           f"from the lines' VAT {vat}")

        # Create
        entry_id = _new_id()
        now = _now_dt()
        for ln in lines:
            ln.update(EntryID=entry_id, Division=div.code,
                      AmountDC=round_money(ln["AmountFC"] * rate), VATAmountDC=round_money(ln["VATAmountFC"] * rate),
                      VATBaseAmountDC=round_money(ln["AmountFC"] * rate))
            getattr(div, kind.line_store)[ln["ID"]] = ln
        amount_dc = sum((ln["AmountDC"] + ln["VATAmountDC"] for ln in lines), Decimal(0))
        vat_dc = sum((ln["VATAmountDC"] for ln in lines), Decimal(0))
        entry = {
            "EntryID": entry_id, "EntryNumber": entry_number, "InvoiceNumber": entry_number,
            "Journal": journal_code, "JournalDescription": journal["Description"], kind.relation: account["ID"],
            f"{kind.relation}Name": account["Name"], "EntryDate": entry_date, "DueDate": due_date,
            "Type": entry_type, "TypeDescription": _ENTRY_TYPE_NAMES[entry_type], "YourRef": body.get("YourRef"),
            "Description": body.get("Description"), "Currency": currency, "Rate": rate, "AmountFC": amount,
            "AmountDC": amount_dc, "VATAmountFC": vat, "VATAmountDC": vat_dc, "Status": 20,
            "StatusDescription": "Open", "PaymentCondition": body.get("PaymentCondition"),
            "PaymentReference": body.get("PaymentReference"), "ReportingYear": reporting_year,
            "ReportingPeriod": reporting_period, "FinancialYear": year_row["year"], "FinancialPeriod": period,
            "Division": div.code, "Created": now, "Modified": now,
        }
        getattr(div, kind.store)[entry_id] = entry
        item_id = _new_id()
        item = dict.fromkeys(_SPECS[kind.open_spec].fields)
        item.update({
            "ID": item_id, "EntryID": _new_id(), "TransactionEntryID": entry_id, "TransactionType": entry_type,
            "EntryNumber": entry_number, "InvoiceNumber": entry_number, "YourRef": entry["YourRef"],
            "Account": account["ID"], "AccountCode": account["Code"], "AccountName": account["Name"],
            "AmountFC": amount, "AmountDC": amount_dc, "RateFC": rate, "TransactionAmountFC": amount,
            "TransactionAmountDC": amount_dc, "Currency": currency, "Description": entry["Description"],
            "DueDate": due_date, "TransactionDueDate": due_date, "InvoiceDate": entry_date, "EntryDate": entry_date,
            "Journal": journal_code, "JournalDescription": journal["Description"],
            "PaymentReference": entry["PaymentReference"], "Status": 20, "Division": div.code,
        })
        if "IsFullyPaid" in item:
            item["IsFullyPaid"] = False
        getattr(div, kind.open_store)[item_id] = item
        div.hids[entry_id] = len(div.hids) + 1
        return self._json({"d": self._shape(request, div, spec, entry, None, expand=True)}, 201)

    def _line(self, div: _Division, kind: _EntryKind, raw: Any, number: int) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _bad(f"Error in body: line {number} must be an object")
        self._unknown(raw, kind.line_writable, _SPECS[kind.spec.replace("Entries", "EntryLines")].type_name)
        gl_id = raw.get("GLAccount")
        if gl_id in (None, ""):
            raise _bad(f"Mandatory: G/L account (line {number})")
        gl = div.gl_accounts.get(gl_id.lower()) if _is_guid(gl_id) else None
        if gl is None:
            raise _bad(f"Not found: G/L Account: {gl_id} (line {number})")
        if gl["IsBlocked"]:
            raise _bad(f"Blocked: G/L Account: {gl['Code']} (line {number})")
        if raw.get("AmountFC") is None:
            raise _bad(f"Mandatory: Amount (line {number})")
        amount = _two_places(_decimal(raw["AmountFC"], f"Amount (line {number})"), f"Amount (line {number})")
        amount = round_money(amount)
        vat_code = raw.get("VATCode") if raw.get("VATCode") is not None else gl["VATCode"]
        pct = Decimal(0)
        if vat_code not in (None, ""):
            vat_row = next((v for v in div.vat_codes.values() if v["Code"] == vat_code), None)
            if vat_row is None:
                raise _bad(f"Not found: VAT code: '{vat_code}' (line {number})")
            if vat_row["IsBlocked"]:
                raise _bad(f"Blocked: VAT code: '{vat_code}' (line {number})")
            if vat_row["VATTransactionType"] not in kind.vat_usage:
                raise _bad(f"Invalid: VAT code: '{vat_code}' cannot be used for {kind.label} (line {number})")
            pct = vat_row["Percentage"]
        else:
            vat_code = None
        computed = round_money(amount * pct)
        vat = computed
        if raw.get("VATAmountFC") is not None:
            what = f"VAT amount (line {number})"
            vat = _two_places(_decimal(raw["VATAmountFC"], what), what)
            vat = round_money(vat)
            if abs(vat - computed) > VAT_TOLERANCE:
                raise _bad(f"Invalid: VAT amount: {vat} differs from {computed} ({amount} x {pct}) by more than "
                           f"{VAT_TOLERANCE} (line {number})")
        quantity = _decimal(raw["Quantity"], "Quantity") if raw.get("Quantity") is not None else None
        row: dict[str, Any] = dict.fromkeys(kind.line_fields)
        row.update(
            ID=_new_id(), LineNumber=number, GLAccount=gl["ID"], GLAccountCode=gl["Code"],
            GLAccountDescription=gl["Description"], AmountFC=amount, VATCode=vat_code, VATAmountFC=vat,
            VATPercentage=pct, VATBaseAmountFC=amount, Description=raw.get("Description"), Quantity=quantity,
            CostCenter=raw.get("CostCenter"), CostUnit=raw.get("CostUnit"), Project=raw.get("Project"),
        )
        for extra in ("From", "To"):
            if raw.get(extra) not in (None, ""):
                try:
                    row[extra] = parse_date_value(raw[extra])
                except ValueError:
                    raise _bad(f"Invalid: {extra}: {raw[extra]!r} (line {number})") from None
        for extra in ("VATNonDeductiblePercentage", "PrivateUsePercentage"):
            if extra in kind.line_fields and raw.get(extra) is not None:
                row[extra] = _decimal(raw[extra], extra)
        return row

    @staticmethod
    def _period(year: Mapping[str, Any], day: date) -> int:
        start: date = year["start"]
        months = (day.year - start.year) * 12 + day.month - start.month
        return min(max(months + 1, 1), year["periods"])

    # --------------------------------------------------------------------------------------- helpers

    def _division(self, division: int) -> _Division:
        try:
            return self._divisions[int(division)]
        except KeyError:
            raise KeyError(f"unknown division {division}") from None

    @staticmethod
    def _enable_currency(div: _Division, code: str, description: str) -> None:
        div.currencies.add(code)
        div.currency_rows[code] = {"Code": code, "Description": description, "AmountPrecision": Decimal("0.01"),
                                   "PricePrecision": Decimal("0.000001")}

    def _entries(self, division: int, kind: _EntryKind) -> list[dict[str, Any]]:
        with self._lock:
            div = self._division(division)
            out = []
            for entry in getattr(div, kind.store).values():
                copy = dict(entry)
                lines = [dict(v) for v in getattr(div, kind.line_store).values() if v["EntryID"] == entry["EntryID"]]
                copy[kind.lines] = sorted(lines, key=lambda v: v["LineNumber"])
                items = [dict(r) for r in getattr(div, kind.open_store).values()
                         if r["TransactionEntryID"] == entry["EntryID"]]
                name = "Receivable" if kind is _SALES else "Payment"
                copy[name] = items[0] if items else None
                copy[name + "s"] = items
                out.append(copy)
            return out

    @staticmethod
    def _day(now: float) -> int:
        return int(now // 86400)

    @staticmethod
    def _roll(bucket: _Bucket, now: float) -> None:
        day, minute = int(now // 86400), int(now // 60)
        if day != bucket.day:
            bucket.day, bucket.day_count = day, 0
        if minute != bucket.minute:
            bucket.minute, bucket.minute_count = minute, 0

    def _rate_headers(self, bucket: _Bucket) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.day_limit),
            "X-RateLimit-Remaining": str(max(0, self.day_limit - bucket.day_count)),
            "X-RateLimit-Reset": str((bucket.day + 1) * 86400 * 1000),
            "X-RateLimit-Minutely-Limit": str(self.minute_limit),
            "X-RateLimit-Minutely-Remaining": str(max(0, self.minute_limit - bucket.minute_count)),
            "X-RateLimit-Minutely-Reset": str((bucket.minute + 1) * 60 * 1000),
        }

    def _take_fault(self, name: str, *, token: bool = False) -> _Fault | None:
        for fault in self._faults:
            if fault.endpoint is None and token:
                continue
            if fault.endpoint is None or fault.endpoint in name:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: _Fault, headers: Mapping[str, str], stat: str = "oauth2/token") -> Response:
        extra = dict(headers)
        if fault.retry_after is not None:
            extra["Retry-After"] = str(fault.retry_after)
        return self._json(_error_body(fault.message), fault.status, headers=extra, stat=stat)

    def _unauthorized(self, name: str, reason: str) -> Response:
        headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"',
                   "Reason": reason}
        return self._json(_error_body(reason), 401, headers=headers, stat=name)

    def _stat(self, name: str, what: str) -> None:
        self._stats.setdefault(name, Counter())[what] += 1

    def _count_status(self, name: str, status: int) -> None:
        if status == 429:
            self._stat(name, "429")
        elif 400 <= status < 500:
            self._stat(name, "4xx")
        elif status >= 500:
            self._stat(name, "5xx")

    def _json(self, body: Any, status: int, *, headers: Mapping[str, str] | None = None,
              stat: str | None = None) -> Response:
        if stat is not None:
            self._count_status(stat, status)
        return Response(dumps(body), status=status, headers=dict(headers or {}),
                        content_type="application/json; charset=utf-8")


def demo_administration(sandbox: ExactSandbox, request: AdminRequest) -> Administration:
    """Set up division 1 as the demo's admin would, and say how the integration is linked.

    Created in the sandbox: sales / purchase journals 70 (type 20), 71 (21), 60 (22), 61 (23); trade
    debtors 400000 and creditors 440000; for every host VAT rate ``n`` (in ``request.rates`` order) a
    sales VAT code ``"n"`` (transaction type B) with revenue account ``7000nn`` (type 110) and a purchase
    VAT code ``"Pn"`` (transaction type P) with cost account ``6000nn`` (type 120), both of the rate's
    percentage (Exact keeps a fraction: 21 % → 0.21), so each 0 % category (Z, E, AE, K, G, O) gets
    its own code; discount accounts 708000 (sales discounts, type 110) and 608000 (discounts received,
    type 120); the book years of ``request.years`` and the foreign currencies of ``request.currencies``
    (rates :data:`~connector.sandbox.admin.DEMO_RATES` from 2000-01-01; a currency without a demo rate
    is enabled without one, so its documents need a rate of their own); then the connector's app consents (tokens).

    Returns the :class:`~connector.sandbox.admin.Administration`: journals 70/71/60/61, ``vat_codes`` /
    ``ledger_accounts`` (sales) and ``purchase_vat_codes`` / ``expense_ledger_accounts`` (purchase) keyed
    by host rate id, ``discount_ledger_accounts={"*": "708000"}`` and
    ``purchase_discount_ledger_accounts={"*": "608000"}``. ``ValueError`` for more than 99 host rates
    (Exact VAT codes are at most 3 characters)."""
    from connector.clock import get_clock

    if len(request.rates) > 99:
        raise ValueError("the demo administration supports at most 99 VAT rates")
    division = 1
    sandbox.add_client("connector-demo", "demo-client-secret")
    sandbox.add_division(division, description=request.name, currency=request.company_currency, country="BE")
    for code, description, type_ in (("70", "Sales", 20), ("71", "Sales credit notes", 21), ("60", "Purchases", 22), ("61", "Purchase credit notes", 23)):
        sandbox.add_journal(division, code, description, type=type_)
    sandbox.add_gl_account(division, "400000", "Trade debtors", type=20, balance_type="B")
    sandbox.add_gl_account(division, "440000", "Trade creditors", type=22, balance_type="B")
    sandbox.add_gl_account(division, "708000", "Sales discounts", type=110, balance_type="W")
    sandbox.add_gl_account(division, "608000", "Discounts received", type=120, balance_type="W", balance_side="C")
    for year in request.years:
        sandbox.add_financial_year(division, year)
    for currency in sorted(request.currencies - {request.company_currency}):
        sandbox.add_currency(division, currency, DEMO_RATES.get(currency))
    admin = Administration(
        connection={"division": division},
        credentials={},
        app_secret={"client_id": "connector-demo", "client_secret": "demo-client-secret"},
        journals=JournalSettings(outgoing_invoices="70", outgoing_credit_notes="71", incoming_invoices="60", incoming_credit_notes="61"),
        discount_ledger_accounts={"*": "708000"},
        purchase_discount_ledger_accounts={"*": "608000"},
    )
    for n, rate in enumerate(request.rates, start=1):
        fraction = str(rate.percentage / 100)
        code, gl = str(n), f"7000{n:02d}"
        sandbox.add_vat_code(division, code, rate.description, percentage=fraction, transaction_type="B")
        sandbox.add_gl_account(division, gl, f"Revenue {rate.description}", type=110, balance_type="W", vat_code=code.ljust(3))
        admin.vat_codes[rate.id] = code
        admin.ledger_accounts[rate.id] = gl
        purchase_code, cost_gl = f"P{n}", f"6000{n:02d}"
        sandbox.add_vat_code(division, purchase_code, f"Purchase {rate.description}", percentage=fraction, transaction_type="P")
        sandbox.add_gl_account(division, cost_gl, f"Costs {rate.description}", type=120, balance_type="W", balance_side="D",
                               vat_code=purchase_code.ljust(3))
        admin.purchase_vat_codes[rate.id] = purchase_code
        admin.expense_ledger_accounts[rate.id] = cost_gl
    access, refresh = sandbox.issue_tokens("connector-demo")
    admin.credentials = {"access_token": access, "refresh_token": refresh, "expires_at": get_clock().now() + sandbox.access_ttl}
    return admin
