"""Exact Online adapter: :class:`connector.ports.AccountingAdapter` over Exact's REST / OData v2 API (httpx).

Rules followed (``shared/reference/accounting-apis.md`` §1):

- Auth (§1.2): the stored access token is used until 30 s before ``expires_at``; only then (when Exact
  allows a refresh: the token is at least 570 s old) is it refreshed, inside ``credentials.lock()``, after
  re-loading the store (another invocation may have refreshed already). The rotated refresh token is
  saved before the new access token is used. A ``401`` on an API call triggers one refresh (or picks up
  another invocation's) and one retry; a second ``401`` or a refused refresh raises
  :class:`~connector.ports.CredentialsChanged`. No token or secret is ever logged or put in a message.
- Rate limits (§1.10): ``X-RateLimit-Minutely-Remaining`` 0 → sleep (clock) until the minutely reset
  before the next call; ``429`` → wait for the minutely reset / ``Retry-After`` and retry; the daily
  budget spent → :class:`~connector.ports.AdapterError` with ``resume_at`` = the daily reset, at once.
- Transient failures (5xx, connection errors, timeouts) are retried with exponential backoff and jitter
  (tenacity, sleeping through :func:`connector.clock.get_clock`), at most ``max_attempts`` tries, then
  ``AdapterError``. A write whose answer was lost (5xx / timeout after sending) is not blindly re-sent:
  the adapter first looks the entry / relation up by its key (``YourRef`` / ``Code``, §1.12) and only
  posts again when it is not there.
- Money is ``Decimal`` both ways: JSON numbers are parsed with ``parse_float=Decimal`` and Decimals are
  written as JSON numbers. Credit notes are posted with negative amounts (Type 21 / 31, §1.8) and read
  back in the document's own sign (positive).
- ``calls`` counts API requests actually sent (retries included): ``reads`` (GET) and ``writes``
  (POST/PUT/DELETE). Token calls are not counted.

Choices where the reference is silent or (unconfirmed):

- The company currency comes from ``system/Divisions`` (``Currency``) and the currency list from
  ``general/Currencies``; ``current/Me`` has no currency field. Both are optional (a 4xx → EUR / the
  company currency alone).
- Exchange rates (exact.md ``financial/ExchangeRates``: ``SourceCurrency``, ``TargetCurrency``,
  ``StartDate``, ``Rate``): read with the metadata for the enabled foreign currencies (one request, no
  request when only the division currency is enabled) into ``ToolMetadata.exchange_rates`` — ``Rate``
  taken as units of the division currency per unit of ``SourceCurrency`` (the direction is unconfirmed;
  Exact's entries carry ``AmountDC = AmountFC × Rate``). A refused read leaves the table unread
  (``exchange_rates_read`` false): Exact then applies its own rate when the entry is posted. The entry's
  ``Rate`` is sent when the booking rules decided one (:mod:`connector.exchange`); never a default of 1.
- Company-currency amounts: read back from the entry header (``AmountDC``, ``VATAmountDC``, both
  read-only, and ``Rate``) into ``BookedEntry.company_*`` in the division currency, document sign.
- Relation code: the party's ``customer_number`` when numeric (≤ 18 digits), else ``9`` + 17 digits of
  the SHA-256 of ``host_id`` (Exact codes are numeric, §1.6). An existing account found by code but
  lacking the customer / supplier flag gets it with a ``PUT`` (Exact shares one account for both).
- Suppliers are looked up by VAT number before the code (Exact does not enforce unique VAT numbers,
  §1.6, and a supplier often exists already, typed in by the accountant): ``VATNumber eq`` the
  normalised form (letters and digits, upper case) and the form the host gave; the rows are compared
  normalised. A VAT number stored in yet another spelling (``BE 0123.456.789`` when the host has
  ``BE0123456789``) is not found by an ``eq`` filter: then the code decides (filtering on VAT numbers is
  itself unconfirmed, §1.6). New accounts get the normalised VAT number. Customers are matched by code
  only, as before.
- ``find_bookings`` matches ``YourRef`` case-insensitively and ignoring trailing spaces (SQL Server
  collation) and also by Type, so an invoice and a credit note with the same number stay apart; purchase
  entries also by ``Supplier`` (supplier invoice numbers repeat across suppliers).
- Payment status (§1.9) comes from ``cashflow/Receivables`` / ``cashflow/Payments`` filtered on
  ``TransactionEntryID`` (40 per request). Paid = every row of the entry matched (``Status`` 50) or, on
  receivables, ``IsFullyPaid``; ``cashflow/Payments`` has no ``IsFullyPaid`` (picqer's field list), so it
  is never selected there. The open amount is the sum of the unmatched rows' ``AmountFC``, taken to be in
  the entry's sign as posted (credit notes negative; unconfirmed for Payments) and turned into the
  document's sign. Status 30 / 40 (selected / processed, not yet matched) count as open.
- The header ``AmountFC`` / ``VATAmountFC`` are sent so Exact refuses an unbalanced entry.
- Paid in the host -> Exact: **not supported**, reported per document (:data:`PAYMENT_NOT_SUPPORTED`,
  :meth:`ExactOnlineAdapter.register_payments`). Exact closes a receivable only by *matching* it with a
  financial (bank / cash) entry (``Status`` 50, §1.9); the reference documents no write for payments or
  matching, only the reads. Posting a bank entry for a payment the host knows of would put money in the
  bank ledger that the bank statement import (how Exact users reconcile) books a second time; a cash
  entry would invent a cash receipt in a journal the admin never chose; and a general-journal entry on
  the customer without matching leaves the receivable open (``Status`` 20), so it would write into the
  books without the invoice ever showing paid. The sandbox has no matching rules to simulate either
  faithfully. So nothing is written: each document gets the reason, unless Exact has it matched already
  (then it counts as done). The seeds promise the host -> tool paid status for Octopus and Yuki only
  (seeds 001, 004).
- A refresh refused with ``Reason: Access Token not expired`` (the stored expiry was wrong) keeps the
  current access token and retries the refresh 30 s later at the earliest; after a ``401`` on an API
  call the same answer means the token is dead → ``CredentialsChanged``.
- A refresh whose answer is lost cannot be recovered (Exact has rotated the token): the next attempt
  gets ``invalid_grant`` → ``CredentialsChanged`` (reconnect).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from connector.adapters.signals import Ambiguous as _Ambiguous, Throttled as _Throttled, Transient as _Transient
from connector import limits
from connector.http import BodyTooLarge, absolute_url, read_response, tls_context
from connector.jsontext import json_text
from connector.adapters import AdapterContext
from connector.clock import get_clock
from connector.models import (
    BookYear,
    Address,
    BookedEntry,
    BookedRef,
    BookingEntry,
    BookingLine,
    BookingRejected,
    BookingResult,
    Direction,
    DocumentKind,
    ExchangeRate,
    GLAccount,
    Journal,
    Party,
    PaymentInfo,
    PaymentState,
    ToolMetadata,
    VatCode,
)
from connector.onboarding import ToolRelation
from connector.ports import AdapterError, CredentialsChanged, CredentialStore, RelationRejected, chunked

__all__ = ["ExactOnlineAdapter", "create_adapter", "hint_for", "normalise_vat"]

#: The per-document reason the paid status host -> Exact gives (see the module docstring for why).
PAYMENT_NOT_SUPPORTED = "not supported in Exact Online: register the payment in Exact (bank reconciliation)"

log = logging.getLogger(__name__)

#: Exchange-rate rows kept in the metadata before a long table is cut to the last :data:`RATE_YEARS`
#: calendar years (and the rate in force before): the metadata is one DynamoDB item (400 KB at most).
MAX_RATE_ROWS = 1500
RATE_YEARS = 2
REFRESH_MARGIN = 30.0  # seconds before expiry; Exact refuses a refresh before 570 s of a 600 s token (§1.2)
BATCH = 40  # filter terms per request (§1.12, ossobv)
#: Documents read, booked and written back together (:func:`connector.adapters.document_steps`): with 60
#: calls a minute (§1.10) one document is posted a second, so a first step of 3 starts a batch's bookings
#: after four host reads and a last step of 3 ends it with a short write-back; the steps between grow up
#: to 20, each read while the one before books.
DOCUMENTS_PER_STEP = (3, 20)
#: Documents per ProcessBatch invocation and batches side by side (:func:`connector.adapters.documents_per_batch`,
#: :func:`connector.adapters.batches_at_once`): the division's 60 calls a minute are shared by the batches
#: anyway, so two batches of 50 book as fast as four of 25 (each needs 50 x 2 / 58 a minute: about 100 s
#: of the function's 300) with half the per-batch and per-step reads and writes: 1.07 DynamoDB requests a
#: document instead of 1.73, connector CPU 1.9 ms a document instead of 2.4 (``connector bench``, 1,000).
DOCUMENTS_PER_BATCH = 50
DOCUMENT_BATCHES_AT_ONCE = 2
_JOURNAL_TYPES = {20: "sales", 21: "sales_credit", 22: "purchase", 23: "purchase_credit"}
_VAT_USAGE = {"S": "sales", "P": "purchase", "B": "both"}
# (entries path, lines path, relation field, lines field)
_SALES = ("salesentry/SalesEntries", "salesentry/SalesEntryLines", "Customer", "SalesEntryLines")
_PURCHASE = ("purchaseentry/PurchaseEntries", "purchaseentry/PurchaseEntryLines", "Supplier", "PurchaseEntryLines")
_HINTS: tuple[tuple[str, str], ...] = (
    ("Unknown: Financial year", "Create the financial year for this date in Exact Online (period-date table), "
                                "then sync again."),
    ("Customer (Type)", "Mark the relation as a customer in Exact Online, then sync again."),
    ("Supplier (Type)", "Mark the relation as a supplier in Exact Online, then sync again."),
    ("not balanced", "The document's totals do not match its lines: correct the document, then sync again."),
    ("VAT amount", "The VAT amount does not match the VAT code's percentage: check the VAT-code link in the "
                   "integration settings."),
    ("G/L Account", "Check the ledger-account mapping in the integration settings: the account must exist "
                    "and not be blocked in Exact Online."),
    ("VAT code", "Check the VAT-code link in the integration settings: the code must exist, not be blocked "
                 "and be usable for this kind of document."),
    ("Already exists", "This entry number is already used in the journal: check the journal's numbering in "
                       "Exact Online."),
    ("Journal", "Check the journal chosen for this document type in the integration settings."),
    ("exchange rate", "Add the currency's rate for the document date in Exact Online's exchange rates, then sync again."),
    ("Currency", "Enable the document's currency in Exact Online, then sync again."),
    ("Account", "Check the relation in Exact Online (it must exist and not be blocked)."),
    ("Entry date", "Check the document date."),
)


DEFAULT_BASE_URL = "https://start.exactonline.nl"
#: The documented success status per method (Exact Online REST API reference,
#: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx: a read answers 200, a create 201 with the
#: entity, an update or delete 204; docs/architecture.md "Answers the connector accepts"). Anything else
#: that is not a 4xx the caller handles (400 refusal, 401 refresh, 429 wait) or a 5xx (retried) is an
#: AdapterError: a 3xx is never followed and never read as an empty success.
_SUCCESS: dict[str, frozenset[int]] = {
    "GET": frozenset({200}), "POST": frozenset({201}), "PUT": frozenset({204}), "DELETE": frozenset({204}),
}


# ------------------------------------------------------------------------------------------ helpers


def _loads(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal) if content else None


def _literal(text: str) -> str:
    """An OData string literal (quote doubled, §1.4)."""
    return "'" + text.replace("'", "''") + "'"


def _signed(sign: int, amount: Decimal) -> Decimal:
    """``amount`` in the document's sign (``sign`` -1 for an entry of Type 21 / 31), never ``-0.00``: a
    zero amount (a zero-VAT credit note's VAT) is read back as ``0.00``, as the document states it."""
    value = sign * amount
    return value.copy_abs() if value.is_zero() else value


def _dec(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        return Decimal(value)
    raise AdapterError(f"Exact Online returned a non-decimal amount ({type(value).__name__})")


def _percent(fraction: Any) -> Decimal:
    value = _dec(fraction) * 100
    return Decimal(format(value.normalize(), "f"))


def _iso_from_ms(value: int | float) -> str:
    return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat()


def _error_message(response: httpx.Response) -> str:
    """``error.message.value`` of Exact's error envelope (§1.11), else a short status text."""
    try:
        body = _loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            if isinstance(message, dict) and message.get("value"):
                return str(message["value"])
            if isinstance(message, str) and message:
                return message
        elif isinstance(error, str):
            return error
    return f"HTTP {response.status_code}"


def normalise_vat(value: str | None) -> str | None:
    """A VAT number as the connector compares it: letters and digits only, upper case
    (``"be 0123.456.789"`` → ``"BE0123456789"``); ``None`` when nothing is left."""
    if not value:
        return None
    text = "".join(ch for ch in str(value) if ch.isascii() and ch.isalnum()).upper()
    return text or None


_ODATA_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")


def _odata_date(value: Any) -> date | None:
    """A date from Exact's OData v2 JSON (``"/Date(1704067200000)/"``, epoch ms UTC) or ISO text."""
    if value in (None, ""):
        return None
    text = str(value)
    match = _ODATA_DATE.fullmatch(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).date()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def hint_for(message: str) -> str:
    """What an admin should fix for an Exact validation ``message`` (§1.11), or ``""``."""
    for needle, hint in _HINTS:
        if needle.lower() in message.lower():
            return hint
    return ""


# ------------------------------------------------------------------------------------------ adapter


class ExactOnlineAdapter:
    """Exact Online, one division, for one connection (see the module docstring for the rules).

    ``base_url`` is the host (``https://start.exactonline.nl`` or a sandbox URL), ``division`` the
    company (int, §1.3). ``credentials`` holds ``{"access_token", "refresh_token", "expires_at"}``
    (``expires_at`` in epoch seconds). ``client_id`` / ``client_secret`` are the app's OAuth2 client.
    ``transport`` replaces httpx's network transport (tests: ``httpx.WSGITransport``). ``max_attempts``
    bounds retries of one call; ``timeout`` is the per-request read timeout in seconds.
    """

    tool = "exact"

    def __init__(
        self,
        base_url: str,
        division: int,
        credentials: CredentialStore,
        *,
        client_id: str,
        client_secret: str,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = 5,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.division = int(division)
        self.credentials = credentials
        self.max_attempts = max_attempts
        self.calls: dict[str, int] = {"reads": 0, "writes": 0}
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            verify=tls_context(),  # built once per process (connector.http)
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"Accept": "application/json"},
            follow_redirects=False,  # a redirect is an error (_send_once), never followed
        )
        self._creds: dict[str, Any] | None = None
        self._minute_remaining: int | None = None
        self._minute_reset: float | None = None  # epoch seconds
        self._day_remaining: int | None = None
        self._day_reset: float | None = None  # epoch seconds
        self._metadata: ToolMetadata | None = None
        self._gl_ids: dict[str, str] = {}  # GL code -> ID
        self._gl_codes: dict[str, str] = {}  # ID -> GL code
        self._vat_raw: dict[str, str] = {}  # stripped VAT code -> code as Exact stores it
        self._backoff = wait_exponential_jitter(initial=1, max=30, exp_base=2, jitter=1)
        #: The division's shared call budget (:class:`connector.stores.budget.TenantBudget`): one token is
        #: taken before every API request (not the token endpoint, which Exact counts apart, §1.2). None: off.
        self.budget: Any = None

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def __enter__(self) -> ExactOnlineAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- metadata

    def keep_alive(self, max_idle_seconds: float) -> bool:
        """Keep an idle connection alive (accounting-apis.md §1.2: an unused refresh token expires after
        30–180 days): when the stored tokens were last refreshed more than ``max_idle_seconds`` ago, make
        one cheap call (``current/Me``), which refreshes and stores the rotated tokens. Returns whether it
        called. Raises :class:`CredentialsChanged` when the refresh is refused (reconnect needed)."""
        expires_at = float(self.credentials.load().get("expires_at") or 0)
        if get_clock().now() - expires_at < max_idle_seconds:
            return False
        self._api("GET", str(self._http.base_url).rstrip("/") + "/api/v1/current/Me", params={"$select": "CurrentDivision"})
        return True

    def fetch_metadata(self) -> ToolMetadata:
        """GL accounts, journals, VAT codes, the division currency and its enabled currencies (§1.5, §1.6).

        Journal types are normalised (20 sales, 21 sales_credit, 22 purchase, 23 purchase_credit, others
        other); VAT percentages are turned from Exact's fraction into percent; VAT codes are stripped of
        their padding (the padded form is kept to post with). Caches the result on the adapter.
        Raises :class:`AdapterError`."""
        gl_rows = self._get_all("financial/GLAccounts", {"$select": "ID,Code,Description,IsBlocked,BalanceType"})
        journal_rows = self._get_all("financial/Journals", {"$select": "Code,Description,Type,IsBlocked"})
        vat_rows = self._get_all(
            "vat/VATCodes", {"$select": "Code,Description,Percentage,VATTransactionType,IsBlocked"}
        )
        company_currency = "EUR"
        divisions = self._get_all(
            "system/Divisions", {"$filter": f"Code eq {self.division}", "$select": "Code,Currency"}, optional=True
        )
        if divisions and divisions[0].get("Currency"):
            company_currency = str(divisions[0]["Currency"])
        currency_rows = self._get_all("general/Currencies", {"$select": "Code"}, optional=True)
        # Exact's period table (§1.11 "Unknown: Financial year"): a date outside it is refused. One row per
        # year (its first period) in one read; a year ends where the next begins, the last one a year
        # after its start (Exact's years are 12 months unless configured otherwise: unconfirmed).
        period_rows = self._get_all("financial/FinancialPeriods", {"$filter": "FinPeriod eq 1", "$select": "FinYear,StartDate"}, optional=True)
        starts = sorted(d for d in (_odata_date(r.get("StartDate")) for r in period_rows) if d)
        ends = [nxt - timedelta(days=1) for nxt in starts[1:]] + ([date(starts[-1].year + 1, starts[-1].month, starts[-1].day) - timedelta(days=1)] if starts else [])
        book_years = tuple(BookYear(start=a, end=b) for a, b in zip(starts, ends, strict=True))
        currencies = tuple(str(r["Code"]) for r in currency_rows if r.get("Code")) or (company_currency,)
        exchange_rates, rates_read, rates_from = self._exchange_rates(company_currency, [c for c in currencies if c != company_currency])

        gl_accounts = tuple(
            GLAccount(
                code=str(r["Code"]).strip(),
                description=r.get("Description") or "",
                id=r.get("ID"),
                blocked=bool(r.get("IsBlocked")),
                balance_type=r.get("BalanceType"),
            )
            for r in gl_rows
        )
        journals = tuple(
            Journal(
                code=str(r["Code"]).strip(),
                description=r.get("Description") or "",
                type=_JOURNAL_TYPES.get(int(r.get("Type") or 0), "other"),
                blocked=bool(r.get("IsBlocked")),
            )
            for r in journal_rows
        )
        vat_codes = tuple(
            VatCode(
                code=str(r["Code"]).strip(),
                description=r.get("Description") or "",
                percentage=_percent(r.get("Percentage")),
                usage=_VAT_USAGE.get(str(r.get("VATTransactionType") or "B"), "both"),
                blocked=bool(r.get("IsBlocked")),
            )
            for r in vat_rows
        )
        self._gl_ids = {a.code: a.id for a in gl_accounts if a.id}
        self._gl_codes = {a.id.lower(): a.code for a in gl_accounts if a.id}
        self._vat_raw = {str(r["Code"]).strip(): str(r["Code"]) for r in vat_rows}
        self._metadata = ToolMetadata(
            gl_accounts=gl_accounts,
            journals=journals,
            vat_codes=vat_codes,
            currencies=currencies,
            company_currency=company_currency,
            book_years=book_years,
            exchange_rates=exchange_rates,
            exchange_rates_read=rates_read,
            exchange_rates_from=rates_from,
        )
        return self._metadata

    def _exchange_rates(self, company_currency: str, foreign: Sequence[str]) -> tuple[tuple[ExchangeRate, ...], bool, date | None]:
        """The division's ``financial/ExchangeRates`` rows of the ``foreign`` currencies into
        ``company_currency`` (``(rows, True, from)``), ``((), True, None)`` without foreign currencies (no
        request), and ``((), False, None)`` when Exact refuses the read (the entry then gets Exact's own
        rate). A table of more than :data:`MAX_RATE_ROWS` rows (daily rates over years) is kept short for
        the stored metadata: per currency the rows from :data:`RATE_YEARS` calendar years back and the one
        in force then; ``from`` is the date from which every currency's kept rows hold (older documents
        get Exact's own rate)."""
        if not foreign:
            return (), True, None
        flt = " or ".join(f"SourceCurrency eq '{c}'" for c in foreign)
        try:
            rows = self._get_all("financial/ExchangeRates", {"$filter": flt, "$select": "SourceCurrency,TargetCurrency,StartDate,Rate"})
        except AdapterError as exc:
            if exc.resume_at:  # the day's budget is spent: not a refusal of this read
                raise
            log.warning("Exact Online exchange rates not read: %s", exc)
            return (), False, None
        rates: list[ExchangeRate] = []
        for row in rows:
            start, rate = _odata_date(row.get("StartDate")), row.get("Rate")
            if start is None or rate in (None, "") or (row.get("TargetCurrency") or company_currency) != company_currency:
                continue
            rates.append(ExchangeRate(currency=str(row.get("SourceCurrency") or ""), start=start, rate=_dec(rate)))
        if len(rates) <= MAX_RATE_ROWS:
            return tuple(rates), True, None
        cutoff = date(datetime.fromtimestamp(get_clock().now(), tz=UTC).year - RATE_YEARS, 1, 1)
        kept: list[ExchangeRate] = []
        covered_from: date | None = None  # rows dropped of a currency: its kept rows hold from their first start
        for currency in sorted({r.currency for r in rates}):
            own = sorted((r for r in rates if r.currency == currency), key=lambda r: r.start)
            mine = [r for r in own if r.start < cutoff][-1:] + [r for r in own if r.start >= cutoff]
            kept += mine
            if len(mine) < len(own):
                covered_from = max(covered_from or mine[0].start, mine[0].start)
        return tuple(kept), True, covered_from

    def use_metadata(self, metadata: ToolMetadata) -> None:
        """Take the metadata this run's ledger-accounts component already fetched (and the engine stored)
        instead of reading it again in every batch: GL account IDs from :attr:`GLAccount.id`, VAT codes
        padded as Exact stores them (left-aligned to 3 characters, §1.6). Issue 8: metadata reads are paid
        once per sync, not per batch."""
        self._metadata = metadata
        self._gl_ids = {a.code: a.id for a in metadata.gl_accounts if a.id}
        self._gl_codes = {a.id.lower(): a.code for a in metadata.gl_accounts if a.id}
        self._vat_raw = {v.code: v.code.ljust(3) for v in metadata.vat_codes}

    def _ensure_metadata(self) -> ToolMetadata:
        return self._metadata if self._metadata is not None else self.fetch_metadata()

    # ------------------------------------------------------------------------------------- relations

    @staticmethod
    def relation_code(party: Party) -> str:
        """The Exact relation code for ``party`` (§1.6 ``Code``): its ``customer_number`` when that is
        numeric and at most 18 digits, else a deterministic 18-digit code derived from ``host_id``
        (``9`` + 17 digits of its SHA-256), stable across runs."""
        number = (party.customer_number or "").strip()
        if number.isdigit() and len(number) <= 18:
            return number
        digest = int(hashlib.sha256(party.host_id.encode()).hexdigest(), 16)
        return "9" + str(digest % 10**17).zfill(17)

    def ensure_relations(self, parties: Sequence[Party], *, customer: bool = True) -> dict[str, str | RelationRejected]:
        """Find or create each party as an Exact account (§1.6), never creating one twice.

        Customers (``customer`` True) are found by their stable code (:meth:`relation_code`,
        ``trim(Code) eq '…' or …``, 40 per request). Suppliers are found first by VAT number (normalised
        with :func:`normalise_vat`; ``VATNumber eq '…' or …``, 40 per request, the rows compared
        normalised again), then by code; when several accounts share the VAT number, one that is
        already a supplier, then one not blocked, then the lowest code wins. Only a party found by
        neither is created (``POST crm/Accounts``, VAT number sent normalised); a second party of the
        same call with the same VAT number or code gets the account created for the first. An existing
        account lacking the customer / supplier flag gets it (``PUT``; Exact shares one account for
        both). Returns host id → account ID (guid) or :class:`RelationRejected` (a ``400`` on that
        party). Raises :class:`AdapterError` for tool-level failures.

        A party with an ``external_id`` (imported from or linked to Exact, :mod:`connector.onboarding`)
        is the account with that ``Code``, used as it is (:meth:`_ensure_linked`): never created,
        renamed or matched otherwise."""
        unique: dict[str, Party] = {}
        for party in parties:
            unique.setdefault(party.host_id, party)
        linked = self._ensure_linked([p for p in unique.values() if p.external_id], customer)
        unique = {hid: p for hid, p in unique.items() if hid not in linked}
        codes = {hid: self.relation_code(p) for hid, p in unique.items()}
        vats = {hid: normalise_vat(p.vat_number) for hid, p in unique.items()} if not customer else {}
        by_vat = self._accounts_by_vat(unique.values()) if vats else {}
        found = self._accounts_by_code(sorted(set(codes.values())))
        result: dict[str, str | RelationRejected] = dict(linked)
        flag = "IsSales" if customer else "IsSupplier"
        for hid, party in unique.items():
            code, vat = codes[hid], vats.get(hid)
            try:
                row = (by_vat.get(vat) if vat else None) or found.get(code)
                if row is None:
                    row = self._create_account(party, code, customer)
                    found[code] = row
                elif not row.get(flag):
                    changes: dict[str, Any] = {flag: True}
                    if customer and row.get("Status") != "C":
                        changes["Status"] = "C"
                    self._update_account(str(row["ID"]), changes)
                    row[flag] = True
                if vat:
                    by_vat.setdefault(vat, row)
                result[hid] = str(row["ID"])
            except RelationRejected as rejected:
                result[hid] = rejected
        return result

    def _ensure_linked(self, parties: Sequence[Party], customer: bool) -> dict[str, str | RelationRejected]:
        """Parties linked to an Exact account by ``external_id`` (its ``Code``): host id → its ``ID``,
        looked up by code (40 per request). Only a missing customer / supplier flag is added (``PUT``
        with that flag, and ``Status`` C for a customer), as for any account the connector uses; an
        account that is gone is a :class:`RelationRejected` naming the code."""
        if not parties:
            return {}
        found = self._accounts_by_code(sorted({str(p.external_id).strip() for p in parties}))
        flag = "IsSales" if customer else "IsSupplier"
        result: dict[str, str | RelationRejected] = {}
        for party in parties:
            code = str(party.external_id).strip()
            row = found.get(code)
            if row is None:
                result[party.host_id] = RelationRejected(
                    f"relation '{party.name}' is linked to Exact Online account {code}, which Exact Online does not "
                    "have (any more): correct the relation's External ID in the host product or import again")
                continue
            try:
                if not row.get(flag):
                    changes: dict[str, Any] = {flag: True}
                    if customer and row.get("Status") != "C":
                        changes["Status"] = "C"
                    self._update_account(str(row["ID"]), changes)
                    row[flag] = True
            except RelationRejected as rejected:
                result[party.host_id] = rejected
                continue
            result[party.host_id] = str(row["ID"])
        return result

    def list_relations(self) -> list[ToolRelation]:
        """Every customer and supplier of the division (§1.6 ``crm/Accounts``), for the import
        (:mod:`connector.onboarding`): ``$filter=IsSales eq true or IsSupplier eq true`` (a filtered bulk
        read, §1.4) with ``$select``, following ``__next``. ``code`` = the trimmed ``Code``, ``tool_id`` =
        ``ID``; a ``Blocked`` account is inactive. Raises :class:`AdapterError`."""
        params = {
            "$filter": "IsSales eq true or IsSupplier eq true",
            "$select": "ID,Code,Name,VATNumber,ChamberOfCommerce,Email,AddressLine1,Postcode,City,Country,"
                       "IsSales,IsSupplier,Blocked",
        }
        relations = []
        for row in self._get_all("crm/Accounts", params):
            code = str(row.get("Code") or "").strip()
            relations.append(ToolRelation(
                code=code or None,
                tool_id=str(row["ID"]),
                name=str(row.get("Name") or "").strip(),
                vat_number=(row.get("VATNumber") or "").strip() or None,
                company_number=(row.get("ChamberOfCommerce") or "").strip() or None,
                is_customer=bool(row.get("IsSales")),
                is_supplier=bool(row.get("IsSupplier")),
                email=(row.get("Email") or "").strip() or None,
                address=Address(
                    line_1=row.get("AddressLine1") or None,
                    postal_code=row.get("Postcode") or None,
                    city=row.get("City") or None,
                    country=(row.get("Country") or "").strip().upper() or None,
                ),
                active=not row.get("Blocked"),
            ))
        return relations

    def _accounts_by_code(self, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for batch in chunked(list(codes), BATCH):
            flt = " or ".join(f"trim(Code) eq {_literal(c)}" for c in batch)
            params = {"$filter": flt, "$select": "ID,Code,Name,IsSales,IsSupplier,Status"}
            for row in self._get_all("crm/Accounts", params):
                found.setdefault(str(row["Code"]).strip(), row)
        return found

    def _accounts_by_vat(self, parties: Iterable[Party]) -> dict[str, dict[str, Any]]:
        """Normalised VAT number → the account to use (see :meth:`ensure_relations` for the choice).

        Filters on the normalised form and, when it differs, on the form the host gave (Exact stores
        the VAT number as typed)."""
        literals: set[str] = set()
        for party in parties:
            vat = normalise_vat(party.vat_number)
            if vat:
                literals.add(vat)
                literals.add(str(party.vat_number).strip())
        candidates: dict[str, list[dict[str, Any]]] = {}
        for batch in chunked(sorted(literals), BATCH):
            flt = " or ".join(f"VATNumber eq {_literal(v)}" for v in batch)
            params = {"$filter": flt, "$select": "ID,Code,Name,IsSales,IsSupplier,Status,VATNumber,Blocked"}
            for row in self._get_all("crm/Accounts", params):
                vat = normalise_vat(row.get("VATNumber"))
                if vat and all(str(r["ID"]) != str(row["ID"]) for r in candidates.get(vat, [])):
                    candidates.setdefault(vat, []).append(row)

        def preference(row: dict[str, Any]) -> tuple[bool, bool, int, str]:
            code = str(row.get("Code") or "").strip()
            return (not row.get("IsSupplier"), bool(row.get("Blocked")), int(code) if code.isdigit() else 10**18, code)

        return {vat: min(rows, key=preference) for vat, rows in candidates.items()}

    def _create_account(self, party: Party, code: str, customer: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Code": code,
            "Name": party.name,
            "IsSales": customer,
            "IsSupplier": not customer,
        }
        if customer:
            body["Status"] = "C"
        optional = {
            "VATNumber": normalise_vat(party.vat_number),
            "ChamberOfCommerce": party.company_number,
            "Email": party.email,
            "AddressLine1": party.address.line_1,
            "Postcode": party.address.postal_code,
            "City": party.address.city,
            "Country": party.address.country,
        }
        body.update({k: v for k, v in optional.items() if v})

        def find() -> dict[str, Any] | None:
            return self._accounts_by_code([code]).get(code)

        status, payload = self._post_with_recovery("crm/Accounts", body, find)
        if status == 201:
            return payload
        message = str(payload)
        if message.lower().startswith("already exists"):  # created meanwhile by another invocation
            existing = find()
            if existing is not None:
                return existing
        raise RelationRejected(f"Exact Online refused relation {code} ({party.name}): {message}")

    def _update_account(self, account_id: str, changes: dict[str, Any]) -> None:
        response = self._api("PUT", f"crm/Accounts(guid'{account_id}')", content=json_text(changes))
        if response.status_code == 400:
            raise RelationRejected(f"Exact Online refused to update relation {account_id}: {_error_message(response)}")
        self._check(response, "crm/Accounts")

    # -------------------------------------------------------------------------------------- bookings

    def post_bookings(self, entries: Sequence[BookingEntry]) -> list[BookingResult | BookingRejected]:
        """Post one SalesEntry (outgoing) or PurchaseEntry (incoming) per entry (§1.7), in order.

        Type 20/21 (sales) or 30/31 (purchase); a credit note's amounts are sent negative (§1.8). Lines
        reference the GL account by ID (from the cached metadata) and the VAT code padded as Exact
        stores it; the header carries ``AmountFC`` / ``VATAmountFC`` so Exact checks the balance.
        Returns :class:`BookingResult` (``EntryNumber``, ``EntryID``) or :class:`BookingRejected` (a
        ``400``: Exact's message plus a hint). Raises :class:`AdapterError` for tool-level failures."""
        self._ensure_metadata()
        results: list[BookingResult | BookingRejected] = []
        for entry in entries:
            body = self._entry_body(entry)
            if isinstance(body, BookingRejected):
                results.append(body)
                continue
            path = (_SALES if entry.direction is Direction.OUTGOING else _PURCHASE)[0]
            status, payload = self._post_with_recovery(path, body, lambda e=entry: self._find_one(e))
            if status == 201:
                results.append(
                    BookingResult(host_id=entry.host_id, booking_number=str(payload["EntryNumber"]),
                                  entry_id=str(payload["EntryID"]))
                )
            else:
                message = str(payload)
                results.append(BookingRejected(host_id=entry.host_id, reason=message, hint=hint_for(message)))
        return results

    @staticmethod
    def _entry_type(entry: BookingEntry) -> int:
        credit = entry.kind is DocumentKind.CREDIT_NOTE
        if entry.direction is Direction.OUTGOING:
            return 21 if credit else 20
        return 31 if credit else 30

    def _entry_body(self, entry: BookingEntry) -> dict[str, Any] | BookingRejected:
        sign = -1 if entry.kind is DocumentKind.CREDIT_NOTE else 1
        lines: list[dict[str, Any]] = []
        for line in entry.lines:
            gl_id = self._gl_ids.get(line.gl_account.strip())
            if gl_id is None:
                reason = f"Not found: G/L Account: {line.gl_account}"
                return BookingRejected(host_id=entry.host_id, reason=reason, hint=hint_for(reason))
            vat = line.vat_code.strip()
            out: dict[str, Any] = {
                "GLAccount": gl_id,
                "VATCode": self._vat_raw.get(vat, vat.ljust(3)),
                "AmountFC": sign * line.net_amount,
                "VATAmountFC": sign * line.vat_amount,
            }
            if line.description:
                out["Description"] = line.description
            lines.append(out)
        _, _, relation_field, lines_field = _SALES if entry.direction is Direction.OUTGOING else _PURCHASE
        body: dict[str, Any] = {
            "Journal": entry.journal,
            relation_field: entry.relation_id,
            "EntryDate": entry.entry_date.isoformat(),
            "Type": self._entry_type(entry),
            "YourRef": entry.reference,
            "Description": entry.description or entry.reference,
            "Currency": entry.currency,
            "AmountFC": sign * entry.gross,
            "VATAmountFC": sign * entry.vat,
        }
        if entry.due_date is not None:
            body["DueDate"] = entry.due_date.isoformat()
        if entry.exchange_rate is not None:
            body["Rate"] = entry.exchange_rate
        if entry.payment_reference:
            body["PaymentReference"] = entry.payment_reference
        body[lines_field] = lines
        return body

    def find_bookings(self, entries: Sequence[BookingEntry]) -> dict[str, BookingResult]:
        """Entries already in Exact, found by ``YourRef`` (= the document number) within the entry's
        journal and of the entry's Type (§1.12; 40 references per request, ``$select`` kept small).

        Purchase entries (incoming) must also have the entry's ``Supplier`` (``relation_id``): a
        supplier's invoice number is not unique across suppliers, and Exact does not enforce ``YourRef``
        uniqueness. ``YourRef`` compares case-insensitively and ignoring trailing spaces (SQL Server
        collation); when several entries match, the lowest ``EntryNumber`` wins. Returns host id →
        :class:`BookingResult` for those found. Raises :class:`AdapterError`."""
        groups: dict[tuple[Direction, str], list[BookingEntry]] = {}
        for entry in entries:
            groups.setdefault((entry.direction, entry.journal), []).append(entry)
        found: dict[str, BookingResult] = {}
        for (direction, journal), group in groups.items():
            path, _, relation_field, _ = _SALES if direction is Direction.OUTGOING else _PURCHASE
            incoming = direction is Direction.INCOMING
            select = "EntryID,EntryNumber,YourRef,Journal,Type" + (f",{relation_field}" if incoming else "")
            for batch in chunked(group, BATCH):
                refs = sorted({e.reference for e in batch})
                flt = f"Journal eq {_literal(journal)} and (" + " or ".join(
                    f"YourRef eq {_literal(r)}" for r in refs) + ")"
                rows = self._get_all(path, {"$filter": flt, "$select": select})
                index: dict[tuple[str, int, str], dict[str, Any]] = {}
                for row in sorted(rows, key=lambda r: int(r.get("EntryNumber") or 0)):
                    relation = str(row.get(relation_field) or "").lower() if incoming else ""
                    key = (str(row.get("YourRef") or "").rstrip().casefold(), int(row.get("Type") or 0), relation)
                    index.setdefault(key, row)
                for entry in batch:
                    relation = entry.relation_id.strip().lower() if incoming else ""
                    row = index.get((entry.reference.rstrip().casefold(), self._entry_type(entry), relation))
                    if row is not None:
                        found[entry.host_id] = BookingResult(
                            host_id=entry.host_id, booking_number=str(row["EntryNumber"]), entry_id=str(row["EntryID"])
                        )
        return found

    def _find_one(self, entry: BookingEntry) -> dict[str, Any] | None:
        result = self.find_bookings([entry]).get(entry.host_id)
        if result is None:
            return None
        return {"EntryNumber": result.booking_number, "EntryID": result.entry_id}

    def read_bookings(
        self, booking_ids: Sequence[str], kind: DocumentKind, direction: Direction = Direction.OUTGOING, *, lines: bool = True
    ) -> dict[str, BookedEntry]:
        """Read entries back by ``EntryID``: sales entries for ``direction`` outgoing, purchase entries
        for incoming (§1.7), with their lines unless ``lines=False`` (40 ids per request, and as many for
        their lines), in the document's own sign: an entry
        of Type 21 / 31 is negated back (credit note positive). ``net`` = ``AmountFC - VATAmountFC``,
        ``vat`` = ``VATAmountFC``, ``gross`` = ``AmountFC`` (document currency). ``kind`` is not needed
        to read (Exact's Type says it). Returns id (as given) → :class:`BookedEntry`; ids that are not
        guids or not found are left out. Raises :class:`AdapterError`."""
        wanted = {i.strip().lower(): i for i in booking_ids if len(i.strip()) == 36}
        result: dict[str, BookedEntry] = {}
        path, lines_path, _, _ = _SALES if direction is Direction.OUTGOING else _PURCHASE
        for batch in chunked(list(wanted), BATCH):
            flt = " or ".join(f"EntryID eq guid'{i}'" for i in batch)
            rows = self._get_all(
                path, {"$filter": flt, "$select": "EntryID,EntryNumber,YourRef,Currency,AmountFC,VATAmountFC,AmountDC,VATAmountDC,Rate,Type"}
            )
            if not rows:
                continue
            line_rows = [] if not lines else self._get_all(
                lines_path,
                {
                    "$filter": " or ".join(f"EntryID eq guid'{r['EntryID']}'" for r in rows),
                    "$select": "EntryID,LineNumber,GLAccount,GLAccountCode,AmountFC,VATAmountFC,VATCode,"
                    "VATPercentage,Description",
                },
            )
            for row in rows:
                entry_id = str(row["EntryID"]).lower()
                sign = -1 if int(row.get("Type") or 0) in (21, 31) else 1
                gross, vat = _dec(row.get("AmountFC")), _dec(row.get("VATAmountFC"))
                company = self._company_amounts(row, sign)
                own = sorted(
                    (ln for ln in line_rows if str(ln.get("EntryID")).lower() == entry_id),
                    key=lambda ln: int(ln.get("LineNumber") or 0),
                )
                result[wanted.get(entry_id, entry_id)] = BookedEntry(
                    entry_id=str(row["EntryID"]),
                    booking_number=str(row.get("EntryNumber")),
                    reference=str(row.get("YourRef") or ""),
                    currency=str(row.get("Currency") or ""),
                    net=_signed(sign, gross - vat),
                    vat=_signed(sign, vat),
                    gross=_signed(sign, gross),
                    lines=tuple(self._booked_line(ln, sign) for ln in own),
                    **company,
                )
        return result

    def _company_amounts(self, row: dict[str, Any], sign: int) -> dict[str, Any]:
        """``BookedEntry``'s company-currency fields from an entry header: ``AmountDC`` (gross) and
        ``VATAmountDC`` in the division currency (the metadata's ``company_currency``), document sign."""
        if row.get("AmountDC") is None or self._metadata is None:
            return {}
        gross_dc, vat_dc = _dec(row.get("AmountDC")), _dec(row.get("VATAmountDC"))
        return {
            "company_currency": self._metadata.company_currency,
            "company_net": _signed(sign, gross_dc - vat_dc),
            "company_vat": _signed(sign, vat_dc),
            "company_gross": _signed(sign, gross_dc),
            "exchange_rate": None if row.get("Rate") in (None, "") else _dec(row.get("Rate")),
        }

    # -------------------------------------------------------------------------------------- payments

    def read_payments(self, bookings: Sequence[BookedRef]) -> dict[str, PaymentState]:
        """Payment state of booked entries from Exact's open items (§1.9), in bulk.

        Sales entries (outgoing) are read from ``cashflow/Receivables``, purchase entries (incoming) from
        ``cashflow/Payments``, filtered on the entries asked (``TransactionEntryID eq guid'…' or …``, 40
        per request, paged). An entry can have several rows (payment terms, or a row split by a partial
        payment); a row counts as paid when ``Status`` is 50 (matched) or, on receivables,
        ``IsFullyPaid`` is true (Payments have no ``IsFullyPaid``). Per entry:

        - ``paid``: every row is paid;
        - ``open_amount``: the sum of ``AmountFC`` of the rows not paid, in the document currency and
          the **document's sign** (a credit note's negative open rows give a positive amount; 0 when
          paid);
        - ``paid_on``: when paid, the latest ``LastPaymentDate`` / ``EndDate`` of its rows, else ``None``.

        Returns ``entry_id`` (as given) → :class:`PaymentState` for every entry Exact has rows for;
        entries without rows (or whose id is not a guid) are left out. Raises :class:`AdapterError`."""
        result: dict[str, PaymentState] = {}
        for direction in (Direction.OUTGOING, Direction.INCOMING):
            refs = {b.entry_id.strip().lower(): b for b in bookings
                    if b.direction is direction and len(b.entry_id.strip()) == 36}
            if not refs:
                continue
            outgoing = direction is Direction.OUTGOING
            path = "cashflow/Receivables" if outgoing else "cashflow/Payments"
            select = "ID,TransactionEntryID,AmountFC,Status,EndDate" + (",IsFullyPaid,LastPaymentDate" if outgoing else "")
            rows_by_entry: dict[str, list[dict[str, Any]]] = {}
            for batch in chunked(sorted(refs), BATCH):
                flt = " or ".join(f"TransactionEntryID eq guid'{i}'" for i in batch)
                for row in self._get_all(path, {"$filter": flt, "$select": select}):
                    rows_by_entry.setdefault(str(row.get("TransactionEntryID") or "").lower(), []).append(row)
            for entry_id, rows in rows_by_entry.items():
                ref = refs.get(entry_id)
                if ref is None:
                    continue
                result[ref.entry_id] = self._payment_state(ref, rows)
        return result

    @staticmethod
    def _payment_state(ref: BookedRef, rows: list[dict[str, Any]]) -> PaymentState:
        def is_paid(row: dict[str, Any]) -> bool:
            return bool(row.get("IsFullyPaid")) or int(row.get("Status") or 0) == 50

        sign = -1 if ref.kind is DocumentKind.CREDIT_NOTE else 1
        open_rows = [r for r in rows if not is_paid(r)]
        open_amount = _signed(sign, sum((_dec(r.get("AmountFC")) for r in open_rows), Decimal(0)))
        paid = not open_rows
        paid_on = None
        if paid:
            dates = [d for r in rows for d in (_odata_date(r.get("LastPaymentDate")), _odata_date(r.get("EndDate"))) if d]
            paid_on = max(dates, default=None)
        if not open_amount:
            open_amount = Decimal(0)  # no "-0" for a paid credit note
        return PaymentState(entry_id=ref.entry_id, paid=paid, open_amount=open_amount, paid_on=paid_on)

    def register_payments(self, items: Sequence[tuple[BookedRef, PaymentInfo]]) -> dict[str, str | None]:
        """The paid status host -> Exact, keyed by ``entry_id``: Exact can't take it (module docstring:
        a receivable closes only by matching a bank / cash entry, which the connector must not invent),
        so nothing is ever written. Each entry Exact already has matched in full (:meth:`read_payments`,
        one bulk read per 40 entries) is ``None`` (done: nothing to do); every other gets
        :data:`PAYMENT_NOT_SUPPORTED`, so the sync shows it per document instead of a silent no-op.
        Raises :class:`AdapterError` (the read)."""
        if not items:
            return {}
        states = self.read_payments([ref for ref, _ in items])
        return {
            ref.entry_id: None if (state := states.get(ref.entry_id)) is not None and state.paid else PAYMENT_NOT_SUPPORTED
            for ref, _ in items
        }

    def _booked_line(self, row: dict[str, Any], sign: int) -> BookingLine:
        gl_code = row.get("GLAccountCode") or self._gl_codes.get(str(row.get("GLAccount") or "").lower(), "")
        return BookingLine(
            gl_account=str(gl_code).strip(),
            vat_code=str(row.get("VATCode") or "").strip(),
            vat_percentage=_percent(row.get("VATPercentage")),
            net_amount=_signed(sign, _dec(row.get("AmountFC"))),
            vat_amount=_signed(sign, _dec(row.get("VATAmountFC"))),
            description=str(row.get("Description") or ""),
        )

    # ---------------------------------------------------------------------------------- HTTP: reads

    def _get_all(self, path: str, params: dict[str, str], *, optional: bool = False) -> list[dict[str, Any]]:
        """Every row of an OData collection, following ``__next`` (§1.4). ``optional``: a 4xx gives ``[]``."""
        rows: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, str] | None = params
        while url:
            response = self._api("GET", url, params=query)
            if optional and 400 <= response.status_code < 500:
                return []
            self._check(response, path)
            body = self._json(response, path)
            data = body.get("d") if isinstance(body, dict) else None
            if not isinstance(data, dict | list):  # never read as "no rows": that posts a found entry again
                raise AdapterError(f"Exact Online answered GET {path} without the OData result ('d')")
            if isinstance(data, list):  # OData v1 shape
                rows.extend(data)
                break
            rows.extend(data.get("results", []))
            url = data.get("__next")
            query = None
        return rows

    def _check(self, response: httpx.Response, what: str) -> None:
        """Raise :class:`AdapterError` unless the status is the documented success of the request's
        method (:data:`_SUCCESS`)."""
        if response.status_code not in _SUCCESS.get(response.request.method, ()):
            raise AdapterError(f"Exact Online refused {what}: HTTP {response.status_code}: {_error_message(response)}")

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        """The decoded JSON body (``Decimal`` numbers); :class:`AdapterError` when it is not JSON (an
        HTML page of a proxy or a login screen)."""
        try:
            return _loads(response.content)
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise AdapterError(f"Exact Online answered {what} with something that is not JSON "
                               f"(HTTP {response.status_code}, {kind})") from None

    # --------------------------------------------------------------------------------- HTTP: writes

    def _post_with_recovery(
        self, path: str, body: dict[str, Any], find: Callable[[], dict[str, Any] | None]
    ) -> tuple[int, Any]:
        """POST ``body``; ``(201, entity)`` or ``(400, message)``. When the answer is lost (5xx /
        timeout), look the object up with ``find`` before posting again (no duplicates, §1.12)."""
        content = json_text(body)
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._api("POST", path, content=content, ambiguous_writes=True)
            except _Ambiguous as exc:
                log.warning("exact: POST %s outcome unknown (%s), attempt %d", path, exc, attempt)
                if attempt == self.max_attempts:
                    raise AdapterError(
                        f"Exact Online unavailable: POST {path} failed {attempt} times ({exc})"
                    ) from None
                get_clock().sleep(self._backoff_seconds(attempt))
                existing = find()
                if existing is not None:
                    return 201, existing
                continue
            if response.status_code == 201:
                body = self._json(response, f"POST {path}")
                if not isinstance(body, dict) or not isinstance(body.get("d"), dict):
                    raise AdapterError(f"Exact Online answered POST {path} without the created entity ('d')")
                return 201, body["d"]
            if response.status_code == 400:
                return 400, _error_message(response)
            self._check(response, path)
        raise AdapterError(f"Exact Online unavailable: POST {path}")  # pragma: no cover - loop always returns

    @staticmethod
    def _backoff_seconds(attempt: int) -> float:
        """Exponential backoff with jitter: 1, 2, 4, … s (at most 30) plus up to 1 s."""
        return min(30.0, 2.0 ** (attempt - 1)) + random.uniform(0, 1)

    # ------------------------------------------------------------------------------- HTTP: the core

    def _api(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict[str, str] | None = None,
        content: str | None = None,
        ambiguous_writes: bool = False,
    ) -> httpx.Response:
        """One authorised API call: rate limits, retries, and the single refresh-and-retry on a 401.

        Returns the response (never 401 / 429 / 5xx). Raises :class:`CredentialsChanged`,
        :class:`AdapterError`, or ``_Ambiguous`` when ``ambiguous_writes`` and a write's outcome is
        unknown."""
        absolute = path_or_url.startswith(("http://", "https://"))
        url = path_or_url if absolute else f"/api/v1/{self.division}/{path_or_url}"
        token = self._access_token()
        response = self._send(method, url, token, params, content, ambiguous_writes)
        if response.status_code != 401:
            return response
        log.info("exact: 401 on %s %s, refreshing once", method, url.split("?")[0])
        token = self._recover_from_401(token)
        response = self._send(method, url, token, params, content, ambiguous_writes)
        if response.status_code == 401:
            raise CredentialsChanged("credentials changed: reconnect")
        return response

    def _send(
        self,
        method: str,
        url: str,
        token: str,
        params: dict[str, str] | None,
        content: str | None,
        ambiguous_writes: bool,
    ) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_Transient, _Throttled)),
            sleep=lambda seconds: get_clock().sleep(seconds),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(method, url, token, params, content, ambiguous_writes)
        except _Transient as exc:
            raise AdapterError(f"Exact Online unavailable: {exc} ({self.max_attempts} attempts)") from None
        except _Throttled:
            raise AdapterError(f"Exact Online kept answering 429 ({self.max_attempts} attempts)") from None
        raise AdapterError("Exact Online: no attempt made")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Throttled):
            return exc.wait
        return float(self._backoff(state))

    def _send_once(
        self,
        method: str,
        url: str,
        token: str,
        params: dict[str, str] | None,
        content: str | None,
        ambiguous_writes: bool,
    ) -> httpx.Response:
        self._respect_budget()
        write = method != "GET"
        headers = {"Authorization": f"Bearer {token}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
            headers["Prefer"] = "return=representation"
        if self.budget is not None:
            self.budget.take()  # the division's shared budget: AdapterError(resume_at) when the day is spent
        self.calls["writes" if write else "reads"] += 1
        path = url.split("?")[0]
        try:
            response = read_response(self._http, method, absolute_url(self._http, url), limit=limits.MAX_ANSWER_BYTES,
                                     params=params, content=content, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Transient(f"{method} {path}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # the request may have reached Exact
            if write and ambiguous_writes:
                raise _Ambiguous(type(exc).__name__) from None
            raise _Transient(f"{method} {path}: {type(exc).__name__}") from None
        except BodyTooLarge as exc:
            raise AdapterError(f"Exact Online's answer to {method} {path} is too large: {exc}") from None
        log.debug("exact: %s %s -> %s", method, path, response.status_code)
        self._note_limits(response)
        if response.status_code == 429:
            now = get_clock().now()
            if self._day_remaining == 0 and self._day_reset is not None and self._day_reset > now:
                raise self._daily_spent()
            raise _Throttled(self._throttle_wait(response, now))
        if response.status_code >= 500:
            if write and ambiguous_writes:
                raise _Ambiguous(f"HTTP {response.status_code}")
            raise _Transient(f"{method} {path}: HTTP {response.status_code}")
        status = response.status_code
        if status not in _SUCCESS.get(method, ()) and not 400 <= status < 500:
            # A redirect (a login or maintenance page, a proxy) or an undocumented status: not Exact's
            # answer. Never read as success (an empty lookup would post an entry again) nor retried.
            what = "a redirect, not followed" if 300 <= status < 400 else "not the documented success"
            raise AdapterError(f"Exact Online answered {method} {path} with HTTP {status} ({what})")
        return response

    # ---------------------------------------------------------------------------------- rate limits

    def _note_limits(self, response: httpx.Response) -> None:
        headers = response.headers

        def number(name: str) -> int | None:
            value = headers.get(name)
            try:
                return int(value) if value is not None else None
            except ValueError:
                return None

        minute_remaining, minute_reset = number("X-RateLimit-Minutely-Remaining"), number("X-RateLimit-Minutely-Reset")
        day_remaining, day_reset = number("X-RateLimit-Remaining"), number("X-RateLimit-Reset")
        if minute_remaining is not None:
            self._minute_remaining = minute_remaining
            self._minute_reset = minute_reset / 1000 if minute_reset is not None else None
        if day_remaining is not None:
            self._day_remaining = day_remaining
            self._day_reset = day_reset / 1000 if day_reset is not None else None

    def _respect_budget(self) -> None:
        clock = get_clock()
        now = clock.now()
        if self._day_remaining == 0 and self._day_reset is not None and now < self._day_reset:
            raise self._daily_spent()
        if self._minute_remaining == 0 and self._minute_reset is not None and now < self._minute_reset:
            wait = self._minute_reset - now
            log.info("exact: minutely budget spent, waiting %.1f s", wait)
            clock.sleep(wait)
            self._minute_remaining = None

    def _throttle_wait(self, response: httpx.Response, now: float) -> float:
        """Seconds to wait after a 429: ``Retry-After``, else the minutely reset, else a minute."""
        retry_after = response.headers.get("Retry-After")
        if retry_after and retry_after.strip().isdigit():
            return float(retry_after)
        if self._minute_reset is not None and self._minute_reset > now:
            return self._minute_reset - now
        return 60.0

    def _daily_spent(self) -> AdapterError:
        reset = self._day_reset or get_clock().now()
        return AdapterError(
            "Exact Online's daily API limit for this division is spent", resume_at=_iso_from_ms(reset * 1000)
        )

    # --------------------------------------------------------------------------------------- tokens

    def _load_credentials(self) -> dict[str, Any]:
        creds = self.credentials.load() or {}
        if not creds.get("access_token") and not creds.get("refresh_token"):
            raise CredentialsChanged("no Exact Online credentials stored: connect")
        self._creds = creds
        return creds

    @staticmethod
    def _fresh(creds: dict[str, Any]) -> bool:
        try:
            expires_at = float(creds.get("expires_at") or 0)
        except (TypeError, ValueError):
            expires_at = 0.0
        return bool(creds.get("access_token")) and get_clock().now() < expires_at - REFRESH_MARGIN

    def _access_token(self) -> str:
        creds = self._creds if self._creds is not None else self._load_credentials()
        if self._fresh(creds):
            return str(creds["access_token"])
        with self.credentials.lock():
            creds = self._load_credentials()
            if self._fresh(creds):
                return str(creds["access_token"])
            return str(self._refresh(creds, after_401=False)["access_token"])

    def _recover_from_401(self, failed_token: str) -> str:
        with self.credentials.lock():
            creds = self._load_credentials()
            if creds.get("access_token") and creds["access_token"] != failed_token and self._fresh(creds):
                return str(creds["access_token"])  # another invocation refreshed meanwhile
            return str(self._refresh(creds, after_401=True)["access_token"])

    def _refresh(self, creds: dict[str, Any], *, after_401: bool) -> dict[str, Any]:
        """Refresh under the lock; save the rotated refresh token before returning (§1.2)."""
        if not creds.get("refresh_token"):
            raise CredentialsChanged("credentials changed: reconnect")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": str(creds["refresh_token"]),
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        response = self._token_call(form)
        now = get_clock().now()
        if response.status_code == 200:
            body = self._json(response, "the token request") or {}
            if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
                raise AdapterError("Exact Online's token endpoint answered without tokens")
            fresh = {
                **creds,
                "access_token": body["access_token"],
                "refresh_token": body["refresh_token"],
                "expires_at": now + int(str(body.get("expires_in") or "600")),
            }
            self.credentials.save(fresh)
            self._creds = fresh
            log.info("exact: access token refreshed")
            return fresh
        reason = response.headers.get("Reason", "")
        if response.status_code == 401 and "not expired" in reason.lower() and not after_401:
            # Exact still considers the current access token young (the stored expiry was wrong): keep
            # using it, and try again in 30 s at the earliest (saved, so other invocations wait too).
            kept = {**creds, "expires_at": now + REFRESH_MARGIN + 30}
            self.credentials.save(kept)
            self._creds = kept
            return kept
        if response.status_code in (400, 401):
            raise CredentialsChanged("credentials changed: reconnect")
        if response.status_code == 429:
            retry_after = response.headers.get("Retry-After", "")
            resume = now + float(retry_after) if retry_after.isdigit() else None
            raise AdapterError(
                "Exact Online's daily token limit is spent",
                resume_at=_iso_from_ms(resume * 1000) if resume else None,
            )
        raise AdapterError(f"Exact Online's token endpoint answered HTTP {response.status_code}")

    def _token_call(self, form: dict[str, str]) -> httpx.Response:
        def once() -> httpx.Response:
            try:
                response = read_response(self._http, "POST", "/api/oauth2/token", limit=limits.MAX_ANSWER_BYTES,
                                         data=form, headers={"Accept": "application/json"})
            except httpx.TransportError as exc:
                raise _Transient(f"token endpoint: {type(exc).__name__}") from None
            except BodyTooLarge as exc:
                raise AdapterError(f"Exact Online's token endpoint answer is too large: {exc}") from None
            if response.status_code >= 500:
                raise _Transient(f"token endpoint: HTTP {response.status_code}")
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._backoff,
            retry=retry_if_exception_type(_Transient),
            sleep=lambda seconds: get_clock().sleep(seconds),
            reraise=True,
        )
        try:
            return retrying(once)
        except _Transient as exc:
            raise AdapterError(f"Exact Online unavailable: {exc} ({self.max_attempts} attempts)") from None



def create_adapter(ctx: AdapterContext) -> ExactOnlineAdapter:
    """Registry hook (``connector.adapters.ADAPTER_MODULES``): the adapter for one entity's division.

    ``ctx.connection["division"]`` is the Exact division chosen at connect time; the app's OAuth client
    id / secret come from ``ctx.app_secret()``; ``ctx.base_url`` overrides the Exact host (sandbox)."""
    app = ctx.app_secret()
    adapter = ExactOnlineAdapter(
        ctx.base_url or DEFAULT_BASE_URL,
        int(ctx.connection["division"]),
        ctx.credentials,
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        transport=ctx.transport,
    )
    adapter.budget = getattr(ctx, "budget", None)
    return adapter
