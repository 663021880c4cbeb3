"""Octopus adapter: :class:`connector.ports.AccountingAdapter` over the Octopus REST API (httpx).

Rules followed (``shared/reference/accounting-apis.md`` §2):

- Auth (§2.2): ``POST /authentication`` (header ``softwareHouseUuid``, body ``{"user","password"}``) gives
  a user token and a session cookie, which the httpx cookie jar sends back to ``POST /dossiers?dossierId=``
  (header ``Token``) for the dossier token; calls carry header ``dossierToken``. Both tokens live 10 min:
  the dossier token is reused until 9 min after issue (``REAUTH_AFTER``), then both are fetched again.
  The dossier token and its expiry are cached in the credential store (``dossier_token``,
  ``dossier_token_expires_at``, ``dossier_id``), written under ``credentials.lock()`` after re-loading the
  store, so the components and batches of one run share one login. A ``401`` on an API call re-logs in
  once (or picks up another invocation's fresh token) and retries; a second ``401``, or a login refused
  with ``401``/``403``, raises :class:`~connector.ports.CredentialsChanged` ("credentials changed:
  reconnect"). No password or token is ever logged or put in a message.
- Transient failures (5xx, connection errors, timeouts) are retried with exponential backoff and jitter
  (tenacity, sleeping through :func:`connector.clock.get_clock`), at most ``max_attempts`` tries, then
  :class:`~connector.ports.AdapterError`; a ``429`` (none documented, §2.8) waits ``Retry-After`` (else
  30 s) within the same bound. ``PUT`` calls (relation upsert, booking update) are idempotent and simply
  retried. A ``POST /buysellbookings`` whose answer was lost (5xx / timeout after sending) is not
  blindly re-sent: the booking at the chosen identity is read back first (§2.9).
- Bookings (§2.5, §2.6, §2.9): the identity (book year, journal, ``documentSequenceNr``) is chosen before
  posting: the journal's ``lastBookedDocumentNr`` + 1, counted on locally for the adapter's life. When a
  post is refused (``400``) and a booking exists at that identity, it is ours if its ``reference`` (the
  document number) and the sign of its ``amount`` match (a previous attempt) → success; otherwise
  another program took the number: the journal is re-read and the next free number tried (several
  batches may book into one journal at once). Credit notes are posted with a negative ``amount`` and
  positive lines; a negative invoice is posted the same way (see :func:`octopus_signs`), and read back
  in the document's own sign.
- Money is ``Decimal`` both ways: JSON numbers are parsed with ``parse_float=Decimal`` and Decimals are
  written as JSON numbers, never through float.
- ``calls`` counts API requests actually sent (retries included): ``reads`` (GET) and ``writes``
  (POST/PUT). Login calls are not counted.

Choices where the reference is silent or (unconfirmed):

- ``base_url`` may be a host (``http://127.0.0.1:8123``) or the REST root; ``/octopus-rest-api/v1`` is
  appended unless the URL already ends with it.
- Metadata covers the book years that are not closed (the last one when all are): journals and GL
  accounts of those years, merged by key / number. Journal type from the key's letter (§2.3): V →
  ``sales`` (valid for invoices *and* credit notes: setup picks V1 / V2), A → ``purchase``, others →
  ``other``; a journal is ``blocked`` when it is closed in every open year. VAT-code usage from its
  ``type`` (1 sales, 2 purchase, 3 both), else from the code (``D21``-style → purchase, §2.3 seed
  script), else both. The company currency is EUR (Octopus is Belgian; no endpoint gives it); the
  currency list comes from ``GET /currencies`` when the dossier serves it.
- Exchange rates: octopus.md documents ``currencyCode`` / ``exchangeRate`` on a booking and no rate
  table; ``GET /currencies`` (accounting-apis.md §2.3, shape unconfirmed) rows that carry an
  ``exchangeRate`` are read as the dossier's current rate into EUR (``ToolMetadata.exchange_rates``,
  valid on any date). When no row carries one the table counts as unread and a booking without a
  decided rate goes without ``exchangeRate`` (Octopus applies its own). ``exchangeRate`` is sent when
  the booking rules decided one (:mod:`connector.exchange`); never a default of 1.
- Company-currency amounts: Octopus's booking rows carry no amounts in the dossier currency (§4), only
  the ``exchangeRate`` it holds; ``BookedEntry.company_*`` are each line's base and VAT × that rate,
  rounded half-up to the cent and summed (how Octopus itself converts is unconfirmed).
- Relations (§2.4): ``externalRelationId`` = the party's ``customer_number`` when it is digits and fits
  a signed 32-bit int, else ``1 000 000 000 + (SHA-256 of host_id mod 10⁹)``, stable across runs. The
  relation is looked up by that id (``GET /relations?extRelationId=``, a ``404`` means none) and written
  with ``PUT /relations`` only when missing or when a field the host owns differs (name, VAT number
  compared without spaces / dots, VAT type, e-mail, address) or the client / supplier flag is missing; the
  other flag is never cleared. VAT type: ``vat_liable`` → 1 (BE) / 4 (other EU country) / 6 (outside
  the EU), ``intra_community`` → 4, ``private_person`` → 7 / 8 / 9 by country, ``not_liable`` → 10,
  ``contractor`` → 1 with :meth:`OctopusAdapter.relation_warning` (Octopus has no contractor type, seed
  001), no type → 1 / 4 / 6 with a VAT number, 7 / 8 / 9 without. A country-less relation counts as
  Belgian.
- Suppliers (``ensure_relations(..., customer=False)``): a supplier is looked up **first by VAT number**
  (``GET /relations?vatNr=`` with the number normalised: spaces and dots removed, upper case; Octopus's
  own filter semantics are unconfirmed), keeping only active relations whose normalised ``vatNr`` is the
  same; when several share it (Octopus does not make VAT numbers unique, §2.4) the one with our
  ``externalRelationId`` wins, then one already flagged ``supplier``, then the lowest id. A match that
  carries our ``externalRelationId`` is ours and is updated like a customer (host-owned fields, flag); a
  match that is not ours (created in Octopus by hand, or another party's) is used as it is: only the
  ``supplier`` flag is added when missing, its other fields and its ``externalRelationId`` are left
  alone. Without a VAT number, or when none matches, the supplier is found or created by
  ``externalRelationId`` exactly as a customer (``supplier`` flag set, ``client`` never cleared), so a
  supplier is never created twice, within a run or across runs.
- ``booking_number`` is the ``documentSequenceNr`` digits (the host stores digits only, seed 003);
  ``entry_id`` is ``"{bookyearId}/{journalKey}/{documentSequenceNr}"``. ``bookyearPeriodeNr`` is the
  book-year period containing the entry date. ``reference`` = the document number (the supplier's
  invoice number for a purchase; ``find_bookings`` matches on it), ``comment`` = the entry description;
  the structured payment reference is not sent (Octopus has one reference field and it carries the
  document number). ``vatRecupPercentage`` 100 (fully deductible; the host gives no deductibility).
- Purchases (§2.5): an incoming entry is posted to the A journal ``entry.journal`` exactly as a sale to
  its V journal (same numbering, retries, collision handling, sign rule). An outgoing entry for an A
  journal or an incoming one for a V journal is refused before any call (the wrong side's journal);
  Octopus itself refuses other journal types and relations without the right flag. Because supplier
  invoice numbers repeat across suppliers, ``find_bookings`` and the "is this booking ours" check after
  a lost answer match an incoming entry's ``reference`` **and** its relation (and the amount's sign).
- Payment state (§2.7, the sandbox's design, the real endpoint is unknown): ``read_payments`` reads the
  open-item feed ``GET /bookyears/{id}/bookings/modified?modifiedTimeStamp=2000-01-01 00:00:00.000``
  once per book year among the bookings asked for (with ``journalTypeId`` V or A when they are all of
  one side), never once per document, and keys its rows by identity: ``openAmount`` (booking sign) is
  turned into the document's sign, ``paid`` is the row's flag (else open amount 0), ``paid_on`` its
  ``lastPaymentDate`` when paid. Bookings missing from the feed (deleted in Octopus) are left out; the
  connector never turns a document that is paid in the host back to unpaid (seed 001), that is the
  engine's rule, not this adapter's.
- Paid in the host -> paid in Octopus (seed 001 "Note"): :meth:`OctopusAdapter.register_payments`
  reads the open items (as ``read_payments``, in bulk), skips bookings already paid, and letters each
  open one with ``POST /balancings`` (§2.7 names the endpoint; its body is the sandbox's design, see
  :mod:`connector.sandbox.octopus`): one balancing per booking, ``balancingDate`` = the host's payment
  date, one line settling the whole open amount. One call per booking so one refusal never sinks the
  others. A lost answer is never blindly re-sent: the open item is read again first.
- A ``403`` on a booking is a per-document refusal: "the booking period … is closed in Octopus" when
  Octopus speaks of a period or a book year, "journal … is closed in Octopus" for a journal. A refused
  post (``400``) with nothing at the identity is a :class:`~connector.models.BookingRejected` with
  Octopus's message. A ``500`` is treated as transient (Octopus also answers ``500`` for malformed data,
  §2.8, but the adapter only sends well-formed dates and 2-decimal amounts).
- When the plain ``GET /buysellbookings`` answers ``400`` (the list quirk, §2.5) the adapter reads the
  ``/buysellbookings/modified`` feed of that book year and journal instead, for the adapter's life.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Sequence
from datetime import date
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
from connector.money import round_money
from connector.onboarding import ToolRelation
from connector.ports import AdapterError, CredentialsChanged, CredentialStore, RelationRejected

__all__ = ["OctopusAdapter", "create_adapter", "octopus_signs", "hint_for"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://service.inaras.be/octopus-rest-api/v1"
API_ROOT = "/octopus-rest-api/v1"
#: The success statuses per method (Octopus REST API, https://service.inaras.be/octopus-rest-api/swagger/,
#: and the public clients that call it: a read answers 200; ``POST buysellbookings`` 200/201/204,
#: ``PUT buysellbookings`` 200/204, ``PUT relations`` 201 created or 200/204 updated; docs/architecture.md
#: "Answers the connector accepts"). Anything else that is not a 4xx the caller handles or a 5xx (retried)
#: is an AdapterError: a 3xx is never followed and never read as an empty success.
_SUCCESS: dict[str, frozenset[int]] = {
    "GET": frozenset({200}), "POST": frozenset({200, 201, 204}), "PUT": frozenset({200, 201, 204}),
}
TOKEN_TTL = 600.0  # seconds, user and dossier token (§2.2)
REAUTH_AFTER = 540.0  # seconds: both tokens are fetched again 9 min after issue (§2.2)
ALL_SINCE = "2000-01-01 00:00:00.000"  # modifiedTimeStamp that lists everything (§2.5, §2.9)
MAX_COLLISIONS = 20  # sequence numbers tried for one booking before giving up
INT32_MAX = 2_147_483_647
_JOURNAL_TYPES = {"V": "sales", "A": "purchase"}
_VAT_USAGE = {1: "sales", 2: "purchase", 3: "both"}
_EU = frozenset({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "EL", "HR", "HU", "IE",
                 "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
_HINTS: tuple[tuple[str, str], ...] = (
    ("vatamount", "The VAT amount does not match the VAT code's percentage: check the VAT-code link in the "
                  "integration settings."),
    ("vat code", "Check the VAT-code link in the integration settings: the code must exist in Octopus and "
                 "suit this kind of document."),
    ("account", "Check the ledger-account mapping in the integration settings: the account must exist in "
                "the book year in Octopus."),
    ("relation", "Check the relation in Octopus: it must exist, be active and be a client (sales) or a "
                 "supplier (purchases)."),
    ("exchange rate", "Add the currency's exchange rate in Octopus, then sync again."),
    ("currency", "Enable the document's currency in Octopus, then sync again."),
    ("amount", "The document's totals do not match its lines: correct the document, then sync again."),
    ("journal", "Check the journal chosen for this document type in the integration details: it must be a "
                "V (sales) or A (purchase) journal of the book year."),
    ("period", "Check the document date: Octopus needs a book-year period that covers it."),
)


#: Octopus takes edits of an already-synced invoice as an update of its booking (seed 001 "Note"); the
#: engine then calls :meth:`OctopusAdapter.update_bookings` (``connector.adapters.supports_updates``).
UPDATES_BOOKINGS = True
#: Document batches booked one at a time (:func:`connector.adapters.batches_at_once`): Octopus lets the
#: caller choose each booking's sequence number (§2.5), so batches side by side collide in the journal.
DOCUMENT_BATCHES_AT_ONCE = 1
#: Documents per ProcessBatch invocation (:func:`connector.adapters.documents_per_batch`): each batch reads
#: the journal's last sequence number once (§2.5), so larger batches mean fewer reads per document; 50
#: (about 150 tool and host requests) stays well inside the function's 300 s even on a shared host budget.
DOCUMENTS_PER_BATCH = 50
#: Documents read, booked and written back together (:func:`connector.adapters.document_steps`): the
#: host reads of the next 10 overlap the bookings of these; the journal's sequence number is read once a
#: batch all the same (the adapter keeps it).
DOCUMENTS_PER_STEP = 10

# ------------------------------------------------------------------------------------------ helpers


def _loads(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal) if content else None


def _dec(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        return Decimal(value)
    raise AdapterError(f"Octopus returned a non-decimal amount ({type(value).__name__})")


def _money(value: Any) -> Decimal:
    """An amount Octopus returns (a JSON number: ``1821.5``, ``0``, ``95000``) at the currency's two
    places (``1821.50``, ``0.00``, ``95000.00``; EN 16931 amounts have at most 2 decimals, BR-DEC), so
    read-back figures look as the document states them. Never rounds: an amount with more places is
    returned as Octopus gave it (a difference the audit should show, not hide). Raises
    :class:`AdapterError` for a value that is not a number."""
    amount = _dec(value)
    if amount.as_tuple().exponent in ("n", "N", "F"):  # NaN / Infinity are not amounts
        raise AdapterError(f"Octopus returned a non-decimal amount ({amount})")
    quantized = amount.quantize(Decimal("0.01"))
    return quantized if quantized == amount else amount


def _percent(value: Any) -> Decimal:
    return Decimal(format(_dec(value).normalize(), "f"))


def _error_message(response: httpx.Response) -> str:
    """``errorMessage`` (or ``description``) of Octopus's error envelope (§2.8), else the status."""
    try:
        body = _loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("errorMessage", "description", "message"):
            if body.get(key):
                return str(body[key])
    return f"HTTP {response.status_code}"


def _vat_key(text: str | None) -> str:
    return re.sub(r"[\s.]", "", text or "").upper()


def _same_text(a: Any, b: Any) -> bool:
    return str(a or "").strip() == str(b or "").strip()


def hint_for(message: str) -> str:
    """What an admin should fix for an Octopus refusal ``message`` (§2.8), or ``""``."""
    lowered = message.lower()
    for needle, hint in _HINTS:
        if needle in lowered:
            return hint
    return ""


def octopus_signs(kind: DocumentKind, gross: Decimal) -> tuple[int, int]:
    """``(amount_sign, line_sign)`` turning document-sign amounts into Octopus's (§2.6).

    Octopus's header ``amount`` is negative for a credit note and the lines then sum to ``-amount``
    (positive); otherwise the lines sum to ``amount``. So ``amount = amount_sign × gross`` with
    ``amount_sign`` −1 for a credit note, and every line amount is multiplied by ``line_sign`` = −1 when
    the document's gross is negative (a negative invoice is booked like a credit note, a negative credit
    note like an invoice), +1 otherwise. Reading back applies the same factors (they are their own
    inverse)."""
    amount_sign = -1 if kind is DocumentKind.CREDIT_NOTE else 1
    return amount_sign, (-1 if gross < 0 else 1)


def _relation_of(row: dict[str, Any]) -> str | None:
    """The ``relationKey.id`` (as text) a booking row names, or ``None``."""
    ident = row.get("relationIdentificationServiceData")
    key = ident.get("relationKey") if isinstance(ident, dict) else None
    if isinstance(key, dict) and key.get("id") is not None:
        return str(key["id"])
    return None


def _day(value: Any) -> date | None:
    """A ``YYYY-MM-DD`` (optionally followed by a time) as a date, else ``None``."""
    text = str(value or "").strip()[:10]
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _parse_entry_id(entry_id: str) -> tuple[int, str, int] | None:
    parts = entry_id.strip().split("/")
    if len(parts) != 3 or not parts[0].lstrip("-").isdigit() or not parts[2].isdigit() or not parts[1]:
        return None
    return int(parts[0]), parts[1], int(parts[2])


# ------------------------------------------------------------------------------------------ adapter


class OctopusAdapter:
    """Octopus, one dossier, for one connection (see the module docstring for the rules).

    ``base_url`` is the Octopus host or REST root (``https://service.inaras.be/octopus-rest-api/v1`` or a
    sandbox URL), ``dossier_id`` the dossier (int, §2.2). ``credentials`` holds ``{"user", "password"}``
    and, once logged in, the cached dossier token (``dossier_token``, ``dossier_token_expires_at`` in
    epoch seconds, ``dossier_id``). ``software_house_uuid`` is the connector's id issued by Octopus.
    ``transport`` replaces httpx's network transport (tests: ``httpx.WSGITransport``); ``max_attempts``
    bounds retries of one call; ``timeout`` is the per-request read timeout in seconds.
    """

    tool = "octopus"

    def __init__(
        self,
        base_url: str,
        dossier_id: int,
        credentials: CredentialStore,
        *,
        software_house_uuid: str,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = 5,
        timeout: float = 30.0,
    ) -> None:
        root = base_url.rstrip("/")
        if not root.endswith(API_ROOT):
            root += API_ROOT
        self.base_url = root
        self.dossier_id = int(dossier_id)
        self.credentials = credentials
        self.max_attempts = max_attempts
        self.calls: dict[str, int] = {"reads": 0, "writes": 0}
        self._software_house = software_house_uuid
        self._http = httpx.Client(
            base_url=root,
            transport=transport,
            verify=tls_context(),  # built once per process (connector.http)
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"Accept": "application/json"},
            follow_redirects=False,  # a redirect is an error (_send_once, _auth_call), never followed
        )
        self._token: str | None = None
        self._token_expires = 0.0  # epoch seconds
        self._metadata: ToolMetadata | None = None
        self._bookyears: list[dict[str, Any]] | None = None
        self._journals: dict[int, dict[str, dict[str, Any]]] = {}  # bookyear -> journalKey -> row
        self._next_seq: dict[tuple[int, str], int] = {}
        self._vat_pct: dict[str, Decimal] | None = None
        self._relations: dict[str, tuple[Any, str]] = {}  # host id -> (fingerprint, relation id)
        self._list_quirk = False
        self._backoff = wait_exponential_jitter(initial=1, max=30, exp_base=2, jitter=1)
        #: The dossier's shared call budget (:class:`connector.stores.budget.TenantBudget`): one token is
        #: taken before every request, login calls included (no limit is documented, §2.8). None: off.
        self.budget: Any = None

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def __enter__(self) -> OctopusAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- metadata

    def fetch_metadata(self) -> ToolMetadata:
        """GL accounts and journals of the open book years, VAT codes and currencies (§2.3).

        Journals: V → ``sales``, A → ``purchase``, others ``other`` (``blocked`` = closed in every open
        year). VAT codes: ``basePercentage`` in percent, usage from ``type`` or the code. GL account codes
        are the account numbers as text. Caches the result (and the journals' last numbers) on the
        adapter. Raises :class:`AdapterError`."""
        years = self._load_bookyears(force=True)
        open_years = [y for y in years if not y.get("closed")] or years[-1:]
        journals: dict[str, Journal] = {}
        for year in open_years:
            year_id = int(year["bookyearKey"]["id"])
            for key, row in self._journal_rows(year_id, force=True).items():
                closed = bool(row.get("closed"))
                known = journals.get(key)
                if known is not None:
                    closed = closed and known.blocked
                journals[key] = Journal(
                    code=key,
                    description=str(row.get("name") or key),
                    type=_JOURNAL_TYPES.get(key[:1].upper(), "other"),
                    blocked=closed,
                )
        accounts: dict[str, GLAccount] = {}
        for year in open_years:
            rows = self._get_list("accounts", {"bookyearId": str(year["bookyearKey"]["id"])})
            for row in rows:
                number = str(row["accountKey"]["id"])
                description = row.get("description") or {}
                if isinstance(description, dict):
                    text = description.get("description_EN") or description.get("description_NL") or \
                        description.get("description_FR") or ""
                else:
                    text = str(description)
                accounts.setdefault(number, GLAccount(code=number, description=text, id=number))
        vat_codes = tuple(
            VatCode(
                code=str(row["code"]),
                description=str(row.get("description") or ""),
                percentage=_percent(row.get("basePercentage")),
                usage=self.vat_usage(row),
            )
            for row in self._get_list("vatcodes")
        )
        self._vat_pct = {v.code: v.percentage for v in vat_codes}
        currency_rows = self._get_list("currencies", optional=True)
        currencies = tuple(str(r.get("code") or r.get("currencyCode")) for r in currency_rows
                           if r.get("code") or r.get("currencyCode")) or ("EUR",)
        exchange_rates = tuple(
            ExchangeRate(currency=str(r.get("code") or r.get("currencyCode")), start=date.min, rate=_dec(r["exchangeRate"]))
            for r in currency_rows
            if (r.get("code") or r.get("currencyCode")) not in (None, "", "EUR") and r.get("exchangeRate") not in (None, "")
            and _dec(r["exchangeRate"]) > 0
        )
        self._metadata = ToolMetadata(
            gl_accounts=tuple(sorted(accounts.values(), key=lambda a: a.code)),
            journals=tuple(sorted(journals.values(), key=lambda j: j.code)),
            vat_codes=vat_codes,
            currencies=currencies,
            company_currency="EUR",
            exchange_rates=exchange_rates,
            exchange_rates_read=any("exchangeRate" in r for r in currency_rows),
            tool_rows={"bookyears": years},
        )
        return self._metadata

    def use_metadata(self, metadata: ToolMetadata) -> None:
        """Take the metadata this run's ledger-accounts component already fetched (the VAT codes'
        percentages, used when reading entries back; the book years with their periods) instead of
        reading ``vatcodes`` and ``bookyears`` again in every batch. A date no cached year covers still
        re-reads the book years (:meth:`_place`)."""
        self._metadata = metadata
        self._vat_pct = {v.code: v.percentage for v in metadata.vat_codes}
        years = metadata.tool_rows.get("bookyears")
        if years:
            self._bookyears = list(years)

    @staticmethod
    def vat_usage(row: dict[str, Any]) -> str:
        """``sales`` / ``purchase`` / ``both`` for an Octopus VAT-code row: from ``type`` (1 / 2 / 3,
        unconfirmed), else from the code (``D`` + digits = purchase as in the seed script, digits =
        sales), else ``both``."""
        try:
            usage = _VAT_USAGE.get(int(row.get("type")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            usage = None
        if usage:
            return usage
        code = str(row.get("code") or "")
        if re.fullmatch(r"D\d+", code):
            return "purchase"
        if code.isdigit():
            return "sales"
        return "both"

    # ------------------------------------------------------------------------------------- relations

    @staticmethod
    def external_relation_id(party: Party) -> int:
        """The ``externalRelationId`` for ``party`` (§2.4, an int of the caller's own): its
        ``customer_number`` when that is digits within a signed 32-bit int, else ``1 000 000 000`` + the
        SHA-256 of ``host_id`` mod 10⁹ (stable across runs)."""
        number = (party.customer_number or "").strip()
        if number.isdigit() and 0 < int(number) <= INT32_MAX:
            return int(number)
        digest = int(hashlib.sha256(party.host_id.encode()).hexdigest(), 16)
        return 1_000_000_000 + digest % 1_000_000_000

    @staticmethod
    def vat_type(party: Party) -> int:
        """Octopus ``vatType`` (§2.4) for the party's host VAT type and country (module docstring)."""
        country = (party.address.country or "BE").upper()
        region = 0 if country == "BE" else (1 if country in _EU else 2)
        kind = party.vat_type
        if kind == "intra_community":
            return 4
        if kind == "not_liable":
            return 10
        if kind == "private_person" or (kind is None and not party.vat_number):
            return (7, 8, 9)[region]
        return (1, 4, 6)[region]  # vat_liable, contractor, or unknown with a VAT number

    @staticmethod
    def relation_warning(party: Party) -> str | None:
        """A warning the engine shows on the relation (and its documents) when Octopus cannot hold the
        party's VAT type faithfully: Octopus has no 'contractor' type (seed 001), so such a relation is
        sent as VAT-liable. ``None`` otherwise, and for a party linked by ``external_id`` (its relation
        is used as it is: nothing of the party is sent)."""
        if party.vat_type == "contractor" and not party.external_id:
            return ("Octopus has no 'contractor' VAT type: the relation was sent as VAT-liable; change its "
                    "VAT type to 'VAT liable' in the CRM")
        return None

    def _relation_fields(self, party: Party) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "name": party.name,
            "vatNr": party.vat_number,
            "vatType": self.vat_type(party),
            "email": party.email,
            "streetAndNr": party.address.line_1,
            "postalCode": party.address.postal_code,
            "city": party.address.city,
            "country": party.address.country.upper() if party.address.country else None,
        }
        return {k: v for k, v in fields.items() if v not in (None, "")}

    def ensure_relations(self, parties: Sequence[Party], *, customer: bool = True) -> dict[str, str | RelationRejected]:
        """Find each party in Octopus and create or update it with ``PUT /relations`` (§2.4) only when it
        is missing or differs; never creates one twice (the upsert matches the ``externalRelationId``).

        Customers (``customer`` True) are found by ``externalRelationId``. Suppliers (``customer`` False)
        are found first by VAT number (``GET /relations?vatNr=``, normalised), then by
        ``externalRelationId`` (module docstring, "Suppliers"); a new one is created with ``supplier``
        True, an existing one gets the flag when it lacks it (``client`` is never cleared). Results are
        remembered for the adapter's life (a party asked again with the same data costs no call).

        Returns host id → Octopus ``relationKey.id`` (as text) or :class:`RelationRejected` (a ``400`` on
        that party). Contractor parties are sent as VAT-liable (see :meth:`relation_warning`). Raises
        :class:`AdapterError` for tool-level failures.

        A party with an ``external_id`` (imported from or linked to Octopus, :mod:`connector.onboarding`)
        is the relation with that ``relationKey.id`` (else that ``externalRelationId``), used as it is
        (:meth:`_ensure_linked`): never created, renamed or matched otherwise."""
        unique: dict[str, Party] = {}
        for party in parties:
            unique.setdefault(party.host_id, party)
        result: dict[str, str | RelationRejected] = {}
        for host_id, party in unique.items():
            if party.external_id:
                try:
                    result[host_id] = self._ensure_linked(party, customer)
                except RelationRejected as rejected:
                    result[host_id] = rejected
                continue
            ext_id = self.external_relation_id(party)
            desired = self._relation_fields(party)
            fingerprint = (customer, ext_id, tuple(sorted(desired.items())))
            known = self._relations.get(host_id)
            if known is not None and known[0] == fingerprint:
                result[host_id] = known[1]
                continue
            try:
                relation_id = self._ensure_relation(party, ext_id, desired, customer)
            except RelationRejected as rejected:
                result[host_id] = rejected
                continue
            self._relations[host_id] = (fingerprint, relation_id)
            result[host_id] = relation_id
        return result

    def _ensure_linked(self, party: Party, customer: bool) -> str:
        """The relation a party is linked to by ``external_id``: ``GET /relations?relationId=`` (then
        ``?extRelationId=`` when no relation has that id; a ``404`` means none). Only a missing ``client``
        / ``supplier`` flag is added (``PUT`` by ``relationKey.id`` with that field alone); a relation that
        is gone is a :class:`RelationRejected` naming the id."""
        code = str(party.external_id).strip()
        row: dict[str, Any] | None = None
        if code.isdigit() and 0 < int(code) <= INT32_MAX:
            for param in ("relationId", "extRelationId"):
                for candidate in self._get_list("relations", {param: code}, none_on_404=True):
                    ident = candidate.get("relationIdentificationServiceData") or {}
                    key = (ident.get("relationKey") or {}).get("id")
                    value = key if param == "relationId" else ident.get("externalRelationId")
                    if key is not None and str(value) == code:
                        row = candidate
                        break
                if row is not None:
                    break
        if row is None:
            raise RelationRejected(
                f"relation '{party.name}' is linked to Octopus relation {code}, which Octopus does not have (any "
                "more): correct the relation's External ID in the host product or import again")
        relation_id = str(row["relationIdentificationServiceData"]["relationKey"]["id"])
        flag = "client" if customer else "supplier"
        if not row.get(flag):
            self._put_relation({"relationIdentificationServiceData": {"relationKey": {"id": int(relation_id)}},
                                flag: True}, party)
        return relation_id

    def list_relations(self) -> list[ToolRelation]:
        """Every relation of the dossier (§2.4, ``GET /relations``; a ``404`` means none), for the import
        (:mod:`connector.onboarding`): ``code`` and ``tool_id`` = ``relationKey.id``, name =
        ``firstName name``, flags ``client`` / ``supplier``, ``active``, VAT type from ``vatType`` (1 / 4
        / 6 → vat_liable / intra_community / vat_liable, 7 / 8 / 9 → private_person, 10 → not_liable).
        Raises :class:`AdapterError`."""
        relations = []
        for row in self._get_list("relations", none_on_404=True):
            key = ((row.get("relationIdentificationServiceData") or {}).get("relationKey") or {}).get("id")
            if key is None:
                continue
            name = " ".join(str(p).strip() for p in (row.get("firstName"), row.get("name")) if p and str(p).strip())
            vat_type = {1: "vat_liable", 4: "intra_community", 6: "vat_liable", 7: "private_person",
                        8: "private_person", 9: "private_person", 10: "not_liable"}.get(int(row.get("vatType") or 0))
            relations.append(ToolRelation(
                code=str(key),
                tool_id=str(key),
                name=name,
                vat_number=(row.get("vatNr") or "").strip() or None,
                is_customer=bool(row.get("client")),
                is_supplier=bool(row.get("supplier")),
                email=(row.get("email") or "").strip() or None,
                address=Address(
                    line_1=row.get("streetAndNr") or None,
                    postal_code=row.get("postalCode") or None,
                    city=row.get("city") or None,
                    country=(row.get("country") or "").strip().upper() or None,
                ),
                active=row.get("active") is not False,
                vat_type=vat_type,
            ))
        return relations

    def _ensure_relation(self, party: Party, ext_id: int, desired: dict[str, Any], customer: bool) -> str:
        flag = "client" if customer else "supplier"
        existing: dict[str, Any] | None = None
        if not customer and _vat_key(party.vat_number):
            match = self._supplier_by_vat(party.vat_number or "", ext_id)
            if match is not None and match.get("relationIdentificationServiceData", {}).get(
                    "externalRelationId") != ext_id:
                return self._use_foreign_supplier(match, party)
            existing = match
        if existing is None:
            existing = self._relation_by_external_id(ext_id)
        if existing is None:
            body = {
                "relationIdentificationServiceData": {"externalRelationId": ext_id},
                **desired,
                "client": customer,
                "supplier": not customer,
            }
            created = self._put_relation(body, party)
            if created is not None:
                return created
            found = self._relation_by_external_id(ext_id)  # a 204 without the key
            if found is None:
                raise AdapterError(f"Octopus accepted relation {ext_id} but does not list it")
            return str(found["relationIdentificationServiceData"]["relationKey"]["id"])
        relation_id = str(existing["relationIdentificationServiceData"]["relationKey"]["id"])
        changed = {k: v for k, v in desired.items() if not self._same(k, existing.get(k), v)}
        if not existing.get(flag):
            changed[flag] = True
        if changed:
            body = {
                "relationIdentificationServiceData": {"relationKey": {"id": int(relation_id)},
                                                      "externalRelationId": ext_id},
                **desired,
                flag: True,
            }
            self._put_relation(body, party)
        return relation_id

    @staticmethod
    def _same(key: str, current: Any, wanted: Any) -> bool:
        if key == "vatNr":
            return _vat_key(current) == _vat_key(wanted)
        if key == "vatType":
            return current is not None and int(current) == int(wanted)
        if key == "country":
            return str(current or "").upper() == str(wanted or "").upper()
        return _same_text(current, wanted)

    def _supplier_by_vat(self, vat_number: str, ext_id: int) -> dict[str, Any] | None:
        """The active relation with this VAT number (normalised) that should stand for the supplier: ours
        (``externalRelationId`` = ``ext_id``) first, then one flagged ``supplier``, then the lowest id;
        ``None`` when no active relation has it (``GET /relations?vatNr=``, a ``404`` means none)."""
        key = _vat_key(vat_number)
        rows = self._get_list("relations", {"vatNr": key}, none_on_404=True)
        matches = [r for r in rows if _vat_key(r.get("vatNr")) == key and r.get("active") is not False
                   and r.get("relationIdentificationServiceData", {}).get("relationKey", {}).get("id") is not None]
        if not matches:
            return None

        def rank(row: dict[str, Any]) -> tuple[bool, bool, int]:
            ident = row["relationIdentificationServiceData"]
            return ident.get("externalRelationId") != ext_id, not row.get("supplier"), int(ident["relationKey"]["id"])

        return min(matches, key=rank)

    def _use_foreign_supplier(self, row: dict[str, Any], party: Party) -> str:
        """Use a relation found by VAT number that the connector did not create: add the ``supplier``
        flag when it lacks it (``PUT`` by ``relationKey.id`` with that field only), change nothing else."""
        relation_id = str(row["relationIdentificationServiceData"]["relationKey"]["id"])
        if not row.get("supplier"):
            self._put_relation({"relationIdentificationServiceData": {"relationKey": {"id": int(relation_id)}},
                                "supplier": True}, party)
        log.info("octopus: supplier %s matched relation %s by VAT number", party.host_id, relation_id)
        return relation_id

    def _relation_by_external_id(self, ext_id: int) -> dict[str, Any] | None:
        rows = self._get_list("relations", {"extRelationId": str(ext_id)}, none_on_404=True)
        for row in rows:
            if row.get("relationIdentificationServiceData", {}).get("externalRelationId") == ext_id:
                return row
        return None

    def _put_relation(self, body: dict[str, Any], party: Party) -> str | None:
        """PUT (upsert, idempotent: retried as is); the relation id when the answer carries it."""
        response = self._api("PUT", "relations", content=json_text(body))
        if response.status_code == 400:
            ident = body["relationIdentificationServiceData"]
            which = ident.get("externalRelationId") or ident.get("relationKey", {}).get("id")
            raise RelationRejected(f"Octopus refused relation {which} ({party.name}): {_error_message(response)}")
        self._check(response, "relations")
        payload = self._json(response, "PUT relations") if response.content else None
        if isinstance(payload, dict):
            key = payload.get("relationKey") or payload.get("relationIdentificationServiceData", {}).get("relationKey")
            if isinstance(key, dict) and key.get("id") is not None:
                return str(key["id"])
        return None

    # -------------------------------------------------------------------------------------- bookings

    def post_bookings(self, entries: Sequence[BookingEntry]) -> list[BookingResult | BookingRejected]:
        """Post one buy/sell booking per entry (§2.5), in order, each at a caller-chosen identity: a sale
        (``Direction.OUTGOING``) in its V journal, a purchase (``Direction.INCOMING``, ``relation_id`` a
        supplier from ``ensure_relations(..., customer=False)``) in its A journal, ``entry.journal``
        either way. Amounts come in the document's sign; a credit note (sales or purchase) is posted with
        a negative total and positive lines (§2.6, :func:`octopus_signs`).

        Returns :class:`BookingResult` (``booking_number`` = the sequence number digits, ``entry_id`` =
        ``"bookyear/journal/seq"``) or :class:`BookingRejected` (a closed period, an unknown code, …).
        Raises :class:`AdapterError` for tool-level failures (Octopus down after retries)."""
        return [self._post_one(entry) for entry in entries]

    def _post_one(self, entry: BookingEntry) -> BookingResult | BookingRejected:
        wrong = self._wrong_side(entry, entry.journal)
        if wrong is not None:
            return wrong
        placed = self._place(entry, None)
        if isinstance(placed, BookingRejected):
            return placed
        year, period = placed
        bookyear = int(year["bookyearKey"]["id"])
        journals = self._journal_rows(bookyear)
        if entry.journal not in journals:
            return BookingRejected(
                host_id=entry.host_id,
                reason=f"journal {entry.journal} does not exist in book year {year.get('bookyearDescription')} in "
                       f"Octopus",
                hint="Create the journal in that book year in Octopus, or choose another journal in the "
                     "integration details.",
            )
        data = self._booking_data(entry, bookyear, entry.journal, period)
        if isinstance(data, BookingRejected):
            return data
        key = (bookyear, entry.journal)
        seq = self._next_seq.setdefault(key, int(journals[entry.journal].get("lastBookedDocumentNr") or 0) + 1)
        ambiguous = collisions = 0
        while True:
            data["documentSequenceNr"] = seq
            content = json_text({"buySellBookingServiceData": data})
            try:
                response = self._api("POST", "buysellbookings", content=content, ambiguous_writes=True)
            except _Ambiguous as exc:
                ambiguous += 1
                log.warning("octopus: booking %s/%s/%s outcome unknown (%s), attempt %d", bookyear, entry.journal,
                            seq, exc, ambiguous)
                if ambiguous >= self.max_attempts:
                    raise AdapterError(f"Octopus unavailable: POST buysellbookings failed {ambiguous} times "
                                       f"({exc})") from None
                get_clock().sleep(self._backoff_seconds(ambiguous))
                found = self._booking_at(bookyear, entry.journal, seq)
                if found is None:
                    continue  # not booked: post again at the same number
                if self._is_ours(found, data):
                    return self._booked(entry, bookyear, entry.journal, seq)
                collisions += 1
                seq = self._after_collision(bookyear, entry.journal, seq)
                continue
            status = response.status_code
            if status in (200, 201, 204):
                return self._booked(entry, bookyear, entry.journal, seq)
            message = _error_message(response)
            if status == 403:
                return self._refused_closed(entry, message, period, entry.journal)
            if status in (400, 409):
                found = self._booking_at(bookyear, entry.journal, seq)
                if found is None:
                    return BookingRejected(host_id=entry.host_id, reason=f"Octopus refused the booking: {message}",
                                           hint=hint_for(message))
                if self._is_ours(found, data):
                    return self._booked(entry, bookyear, entry.journal, seq)
                collisions += 1
                if collisions > MAX_COLLISIONS:
                    return BookingRejected(
                        host_id=entry.host_id,
                        reason=f"no free document number found in journal {entry.journal} after {collisions} tries",
                        hint="Another program is booking into this journal at the same time: sync again later.",
                    )
                log.info("octopus: %s/%s/%s is taken, re-reading the journal", bookyear, entry.journal, seq)
                seq = self._after_collision(bookyear, entry.journal, seq)
                continue
            if status == 404:
                return BookingRejected(host_id=entry.host_id, reason=f"Octopus refused the booking: {message}",
                                       hint=hint_for(message))
            self._check(response, "buysellbookings")
            return BookingRejected(host_id=entry.host_id, reason=f"Octopus answered HTTP {status}: {message}")

    def update_bookings(self, items: Sequence[tuple[BookingEntry, str]]) -> list[BookingResult | BookingRejected]:
        """Book edited documents again at their existing identity (``PUT /buysellbookings``, §2.5; seed
        004: Octopus takes edits of synced invoices unless the period is closed).

        ``items`` pairs each new entry with the ``entry_id`` its first booking returned. The identity's
        book year and journal are kept (a date moved out of that book year is refused); the period is the
        one containing the new date. Returns one result per item, in order: :class:`BookingResult` (same
        number and id) or :class:`BookingRejected` (period closed, booking gone, refused data). Raises
        :class:`AdapterError` for tool-level failures."""
        results: list[BookingResult | BookingRejected] = []
        for entry, entry_id in items:
            ident = _parse_entry_id(entry_id)
            if ident is None:
                results.append(BookingRejected(host_id=entry.host_id,
                                               reason=f"'{entry_id}' is not an Octopus booking id"))
                continue
            bookyear, journal, seq = ident
            wrong = self._wrong_side(entry, journal)
            if wrong is not None:
                results.append(wrong)
                continue
            placed = self._place(entry, bookyear)
            if isinstance(placed, BookingRejected):
                results.append(placed)
                continue
            _, period = placed
            data = self._booking_data(entry, bookyear, journal, period)
            if isinstance(data, BookingRejected):
                results.append(data)
                continue
            data["documentSequenceNr"] = seq
            response = self._api("PUT", "buysellbookings", content=json_text({"buySellBookingServiceData": data}))
            status = response.status_code
            message = _error_message(response) if status >= 400 else ""
            if status in (200, 201, 204):
                results.append(BookingResult(host_id=entry.host_id, booking_number=str(seq), entry_id=entry_id))
            elif status == 403:
                results.append(self._refused_closed(entry, message, period, journal))
            elif status == 404:
                results.append(BookingRejected(
                    host_id=entry.host_id, reason=f"booking {entry_id} no longer exists in Octopus",
                    hint="The booking was deleted in Octopus: clear the document's booking number to book it anew."))
            elif status in (400, 409):
                results.append(BookingRejected(host_id=entry.host_id, reason=f"Octopus refused the update: {message}",
                                               hint=hint_for(message)))
            else:
                self._check(response, "buysellbookings")
        return results

    @staticmethod
    def _wrong_side(entry: BookingEntry, journal: str) -> BookingRejected | None:
        """A sale aimed at an A (purchase) journal or a purchase aimed at a V (sales) journal, refused
        without a call; ``None`` otherwise (other letters are left to Octopus)."""
        letter = journal.strip()[:1].upper()
        incoming = entry.direction is Direction.INCOMING
        if (letter == "A" and not incoming) or (letter == "V" and incoming):
            side = "incoming" if incoming else "outgoing"
            what = "credit notes" if entry.kind is DocumentKind.CREDIT_NOTE else "invoices"
            own, needed = ("a sales (V)", "a purchase (A)") if incoming else ("a purchase (A)", "a sales (V)")
            return BookingRejected(
                host_id=entry.host_id,
                reason=f"journal {journal} is {own} journal in Octopus: {side} {what} need {needed} journal",
                hint=f"Choose {needed} journal for {side} {what} in the integration details.",
            )
        return None

    def _place(self, entry: BookingEntry, bookyear: int | None) -> tuple[dict[str, Any], int] | BookingRejected:
        """The book year (the given one, or the one containing the entry date) and its period."""
        day = entry.entry_date
        for force in (False, True):
            years = self._load_bookyears(force=force)
            if bookyear is not None:
                year = next((y for y in years if int(y["bookyearKey"]["id"]) == bookyear), None)
                if year is not None and not date.fromisoformat(year["startDate"]) <= day <= \
                        date.fromisoformat(year["endDate"]):
                    return BookingRejected(
                        host_id=entry.host_id,
                        reason=f"the document date {day} is outside book year {year.get('bookyearDescription')} "
                               f"of its booking",
                        hint="Octopus keeps a booking in its book year: keep the date within that year, or credit "
                             "the document and create a new one.",
                    )
            else:
                year = next((y for y in years if date.fromisoformat(y["startDate"]) <= day
                             <= date.fromisoformat(y["endDate"])), None)
            if year is not None:
                break
        else:
            if bookyear is not None:
                return BookingRejected(host_id=entry.host_id,
                                       reason=f"book year {bookyear} of the booking no longer exists in Octopus")
            return BookingRejected(
                host_id=entry.host_id,
                reason=f"no book year in Octopus covers {day}",
                hint="Create the fiscal year in Octopus (Management > Fiscal years), then sync again.",
            )
        period = next((int(p["bookyearPeriod"]) for p in year.get("periods") or []
                       if date.fromisoformat(p["startDate"]) <= day <= date.fromisoformat(p["endDate"])), None)
        if period is None:
            return BookingRejected(host_id=entry.host_id,
                                   reason=f"no period of book year {year.get('bookyearDescription')} covers {day}",
                                   hint="Check the periods of the fiscal year in Octopus.")
        return year, period

    def _booking_data(
        self, entry: BookingEntry, bookyear: int, journal: str, period: int
    ) -> dict[str, Any] | BookingRejected:
        if not entry.relation_id.strip().isdigit():
            return BookingRejected(host_id=entry.host_id,
                                   reason=f"'{entry.relation_id}' is not an Octopus relation id")
        amount_sign, line_sign = octopus_signs(entry.kind, entry.gross)
        lines: list[dict[str, Any]] = []
        for line in entry.lines:
            account = line.gl_account.strip()
            if not account.isdigit():
                return BookingRejected(host_id=entry.host_id,
                                       reason=f"ledger account '{line.gl_account}' is not an Octopus account number",
                                       hint=hint_for("account"))
            lines.append({
                "accountKey": int(account),
                "baseAmount": line_sign * line.net_amount,
                "vatCodeKey": line.vat_code.strip(),
                "vatAmount": line_sign * line.vat_amount,
                "vatRecupPercentage": 100,
                "comment": line.description or "",
            })
        data: dict[str, Any] = {
            "bookyearKey": {"id": bookyear},
            "journalKey": journal,
            "documentSequenceNr": None,
            "relationIdentificationServiceData": {"relationKey": {"id": int(entry.relation_id)}},
            "bookyearPeriodeNr": period,
            "documentDate": entry.entry_date.isoformat(),
            "expiryDate": (entry.due_date or entry.entry_date).isoformat(),
            "comment": entry.description or entry.reference,
            "reference": entry.reference,
            "amount": amount_sign * entry.gross,
            "currencyCode": entry.currency,
            "paymentMethod": 0,
            "bookingLines": lines,
        }
        if entry.exchange_rate is not None:
            data["exchangeRate"] = entry.exchange_rate
        return data

    @staticmethod
    def _is_ours(found: dict[str, Any], data: dict[str, Any]) -> bool:
        """A booking at our identity is a previous attempt of ours: same reference, same amount sign and,
        when the row names one, the same relation (supplier invoice numbers repeat across suppliers)."""
        if not _same_text(found.get("reference"), data["reference"]) or \
                (_dec(found.get("amount")) < 0) != (data["amount"] < 0):
            return False
        relation = _relation_of(found)
        return relation is None or relation == str(data["relationIdentificationServiceData"]["relationKey"]["id"])

    def _booked(self, entry: BookingEntry, bookyear: int, journal: str, seq: int) -> BookingResult:
        key = (bookyear, journal)
        self._next_seq[key] = max(self._next_seq.get(key, 0), seq + 1)
        return BookingResult(host_id=entry.host_id, booking_number=str(seq), entry_id=f"{bookyear}/{journal}/{seq}")

    def _after_collision(self, bookyear: int, journal: str, seq: int) -> int:
        """Another program took ``seq``: re-read the journal and continue after its last number."""
        row = self._journal_rows(bookyear, force=True).get(journal) or {}
        nxt = max(int(row.get("lastBookedDocumentNr") or 0) + 1, seq + 1)
        self._next_seq[(bookyear, journal)] = nxt
        return nxt

    @staticmethod
    def _refused_closed(entry: BookingEntry, message: str, period: int, journal: str) -> BookingRejected:
        lowered = message.lower()
        label = f"{period // 100}/{period % 100:02d}" if period > 9999 else str(period)
        if "period" in lowered or "bookyear" in lowered or "book year" in lowered:
            return BookingRejected(
                host_id=entry.host_id,
                reason=f"the booking period {label} of journal {journal} is closed in Octopus",
                hint="Octopus takes no bookings in a closed period: reopen the period in Octopus (ask your "
                     "accountant) or correct the document, then sync again.",
            )
        if "journal" in lowered and "closed" in lowered:
            return BookingRejected(host_id=entry.host_id, reason=f"journal {journal} is closed in Octopus",
                                   hint=f"Reopen journal {journal} in Octopus or choose another journal in the "
                                        "integration details, then sync again.")
        return BookingRejected(host_id=entry.host_id, reason=f"Octopus refused the booking: {message}",
                               hint="Check the journal and the user's rights in Octopus (a journal in use by "
                                    "another user is refused too), then sync again.")

    def find_bookings(self, entries: Sequence[BookingEntry]) -> dict[str, BookingResult]:
        """Entries already in Octopus (a crash after posting), found in the entry's journal, all book
        years (``/buysellbookings/modified?bookyearId=-1``, one call per journal, §2.9): a sale by
        ``reference`` (= its document number, unique in the entity) and the sign of ``amount`` (invoice /
        credit note); a purchase by ``reference`` (= the supplier's invoice number), the sign **and** the
        relation (``entry.relation_id``), since two suppliers may use the same number. The lowest identity
        wins when several match. Returns host id → :class:`BookingResult`. Raises :class:`AdapterError`."""
        groups: dict[str, list[BookingEntry]] = {}
        for entry in entries:
            groups.setdefault(entry.journal, []).append(entry)
        found: dict[str, BookingResult] = {}
        for journal, group in groups.items():
            rows = self._get_list("buysellbookings/modified", {"bookyearId": "-1", "journalKey": journal,
                                                               "modifiedTimeStamp": ALL_SINCE})
            index: dict[tuple[str, bool, str | None], dict[str, Any]] = {}
            for row in sorted(rows, key=lambda r: (int(r["bookyearKey"]["id"]), int(r["documentSequenceNr"]))):
                if row.get("journalKey") not in (None, journal):
                    continue
                ref, negative = str(row.get("reference") or "").strip(), _dec(row.get("amount")) < 0
                index.setdefault((ref, negative, None), row)
                index.setdefault((ref, negative, _relation_of(row)), row)
            for entry in group:
                amount_sign, _ = octopus_signs(entry.kind, entry.gross)
                relation = entry.relation_id.strip() if entry.direction is Direction.INCOMING else None
                row = index.get((entry.reference.strip(), amount_sign * entry.gross < 0, relation))
                if row is not None:
                    bookyear, seq = int(row["bookyearKey"]["id"]), int(row["documentSequenceNr"])
                    found[entry.host_id] = BookingResult(host_id=entry.host_id, booking_number=str(seq),
                                                         entry_id=f"{bookyear}/{journal}/{seq}")
        return found

    def read_bookings(self, booking_ids: Sequence[str], kind: DocumentKind,
                      direction: Direction = Direction.OUTGOING, *, lines: bool = True) -> dict[str, BookedEntry]:
        """Read bookings back by ``entry_id`` (``"bookyear/journal/seq"``) with their lines, in the
        document's own sign: ``kind`` says whether they are credit notes (Octopus stores a credit note's
        total negative, §2.6, sales and purchases alike), so pass the kind the entries were posted as.
        ``direction`` (sales / purchases) changes nothing here: the id names the journal, and Octopus
        stores both sides the same way. ``net`` = Σ base, ``vat`` = Σ VAT, ``gross`` = the total, lines
        with their GL account, VAT code and percentage (``lines`` changes nothing: they come in the same
        read). Reads in bulk: one ``GET /buysellbookings``
        (§2.5) per book year and journal among the ids, never one per booking (issue 8). Unknown or
        malformed ids are left out. Raises :class:`AdapterError`."""
        groups: dict[tuple[int, str], dict[int, str]] = {}
        for entry_id in booking_ids:
            ident = _parse_entry_id(entry_id)
            if ident is not None:
                groups.setdefault((ident[0], ident[1]), {})[ident[2]] = entry_id
        result: dict[str, BookedEntry] = {}
        amount_sign = -1 if kind is DocumentKind.CREDIT_NOTE else 1
        for (bookyear, journal), wanted in sorted(groups.items()):
            for row in self._journal_bookings(bookyear, journal):
                entry_id = wanted.get(int(row.get("documentSequenceNr") or 0))
                if entry_id is None or row.get("journalKey") not in (None, journal):
                    continue
                gross = amount_sign * _money(row.get("amount"))
                _, line_sign = octopus_signs(kind, gross)
                lines = tuple(self._booked_line(ln, line_sign) for ln in row.get("bookingLines") or [])
                rate = None if row.get("exchangeRate") in (None, "") else _dec(row.get("exchangeRate"))
                company: dict[str, Any] = {}
                if rate is not None:
                    company_net = sum((round_money(ln.net_amount * rate) for ln in lines), Decimal(0))
                    company_vat = sum((round_money(ln.vat_amount * rate) for ln in lines), Decimal(0))
                    company = {"company_currency": "EUR", "company_net": company_net, "company_vat": company_vat,
                               "company_gross": company_net + company_vat, "exchange_rate": rate}
                result[entry_id] = BookedEntry(
                    entry_id=entry_id,
                    booking_number=str(row.get("documentSequenceNr")),
                    reference=str(row.get("reference") or ""),
                    currency=str(row.get("currencyCode") or ""),
                    net=sum((ln.net_amount for ln in lines), Decimal("0.00")),
                    vat=sum((ln.vat_amount for ln in lines), Decimal("0.00")),
                    gross=gross,
                    lines=lines,
                    **company,
                )
        return result

    def _journal_bookings(self, bookyear: int, journal: str) -> list[dict[str, Any]]:
        """Every booking of one journal in one book year (§2.5 ``GET /buysellbookings?bookyearId=
        &journalKey=``; the modified feed when that list answers 400), ``[]`` when there is none."""
        if not self._list_quirk:
            response = self._api("GET", "buysellbookings", params={"bookyearId": str(bookyear), "journalKey": journal})
            if response.status_code == 404:
                return []
            if response.status_code == 400:
                log.info("octopus: GET buysellbookings answers 400, using the modified feed")
                self._list_quirk = True
            else:
                self._check(response, "buysellbookings")
                return list(self._json(response, "GET buysellbookings") or [])
        return self._get_list("buysellbookings/modified", {"bookyearId": str(bookyear), "journalKey": journal,
                                                           "modifiedTimeStamp": ALL_SINCE})

    def _booked_line(self, row: dict[str, Any], sign: int) -> BookingLine:
        code = str(row.get("vatCodeKey") or "")
        if self._vat_pct is None:
            self._vat_pct = {str(v["code"]): _percent(v.get("basePercentage")) for v in self._get_list("vatcodes")}
        return BookingLine(
            gl_account=str(row.get("accountKey") or ""),
            vat_code=code,
            vat_percentage=self._vat_pct.get(code, Decimal(0)),
            net_amount=sign * _money(row.get("baseAmount")),
            vat_amount=sign * _money(row.get("vatAmount")),
            description=str(row.get("comment") or ""),
        )

    def read_payments(self, bookings: Sequence[BookedRef]) -> dict[str, PaymentState]:
        """Payment state of booked documents, sales and purchases, keyed by ``entry_id`` (§2.7, sandbox
        design): the open-item feed ``GET /bookyears/{id}/bookings/modified`` is read once per book year
        among ``bookings`` (filtered to V or A journals when they are all of one side), never per document.

        Each state: ``paid`` (Octopus's flag: reconciled in full; else open amount 0), ``open_amount``
        (``Decimal``, document currency, the **document's sign**: an unpaid credit note of 48.40 is
        +48.40, a negative invoice's open amount negative), ``paid_on`` (the last payment date when paid,
        else ``None``). Bookings Octopus no longer lists and malformed ids are left out. Raises
        :class:`AdapterError`."""
        wanted: dict[int, dict[tuple[str, int], BookedRef]] = {}
        for ref in bookings:
            ident = _parse_entry_id(ref.entry_id)
            if ident is not None:
                wanted.setdefault(ident[0], {})[(ident[1], ident[2])] = ref
        result: dict[str, PaymentState] = {}
        for bookyear, refs in sorted(wanted.items()):
            params = {"modifiedTimeStamp": ALL_SINCE}
            letters = {journal[:1].upper() for journal, _ in refs}
            if len(letters) == 1 and letters <= {"V", "A"}:
                params["journalTypeId"] = letters.pop()
            rows = self._get_list(f"bookyears/{bookyear}/bookings/modified", params, none_on_404=True)
            for row in rows:
                try:
                    key = (str(row.get("journalKey") or ""), int(row.get("documentSequenceNr") or 0))
                except (TypeError, ValueError):
                    continue
                ref = refs.get(key)
                if ref is None or row.get("openAmount") is None:
                    continue
                sign = -1 if ref.kind is DocumentKind.CREDIT_NOTE else 1
                open_amount = sign * _money(row["openAmount"])
                paid = row["paid"] if isinstance(row.get("paid"), bool) else open_amount == 0
                result[ref.entry_id] = PaymentState(
                    entry_id=ref.entry_id,
                    paid=paid,
                    open_amount=open_amount,
                    paid_on=_day(row.get("lastPaymentDate")) if paid else None,
                )
        return result

    def register_payments(self, items: Sequence[tuple[BookedRef, PaymentInfo]]) -> dict[str, str | None]:
        """Give Octopus the paid status of outgoing invoices the host has as paid in full (seed 001: "when
        an invoice has obtained the status Paid in Teamleader Focus, it will also receive the status Paid
        in Octopus"), keyed by ``entry_id``: ``None`` = settled (now or before), a string = why not.

        The open items of all ``items`` are read first (:meth:`read_payments`: one feed read per book
        year). A booking already paid in Octopus is left alone (``None``: nothing is written, so a second
        call is free and never pays twice); one Octopus no longer lists gets "the booking is no longer in
        Octopus"; every other gets ``POST /balancings`` (sandbox design, §2.7 "the biggest gap")::

            {"balancingServiceData": {"balancingDate": <paid_on>, "comment": "Paid in the host product: <ref>",
              "balancingLines": [{"bookyearKey": {"id": y}, "journalKey": j, "documentSequenceNr": n,
                                  "amount": <the whole open amount, positive>}]}}

        Octopus's open amount is settled, not ``PaymentInfo.amount``: the host has the invoice paid in
        full. A ``201`` is done; a refusal (``4xx``) is read back and counts as done when the item is paid
        by now (e.g. a re-sent request), else the reason is Octopus's message; a lost answer (5xx /
        timeout after sending) reads the item again before trying once more. Only outgoing documents are
        taken (incoming ones get a reason). Raises :class:`AdapterError` for tool-level failures."""
        out: dict[str, str | None] = {}
        todo: list[tuple[BookedRef, PaymentInfo]] = []
        for ref, info in items:
            if ref.direction is not Direction.OUTGOING:
                out[ref.entry_id] = "only sales documents can be marked paid in Octopus from the host product"
            elif _parse_entry_id(ref.entry_id) is None:
                out[ref.entry_id] = f"'{ref.entry_id}' is not an Octopus booking"
            else:
                todo.append((ref, info))
        states = self.read_payments([ref for ref, _ in todo]) if todo else {}
        for ref, info in todo:
            state = states.get(ref.entry_id)
            if state is None:
                out[ref.entry_id] = "the booking is no longer in Octopus"
            elif state.paid:
                out[ref.entry_id] = None
            else:
                out[ref.entry_id] = self._balance(ref, info, state)
        return out

    def _balance(self, ref: BookedRef, info: PaymentInfo, state: PaymentState) -> str | None:
        """One ``POST /balancings`` settling ``ref``'s open item; ``None`` when it is paid afterwards."""
        ident = _parse_entry_id(ref.entry_id)
        assert ident is not None
        bookyear, journal, seq = ident
        tries = 0
        while True:
            tries += 1
            line = {"bookyearKey": {"id": bookyear}, "journalKey": journal, "documentSequenceNr": seq,
                    "amount": abs(state.open_amount)}
            data = {"balancingDate": info.paid_on, "comment": f"Paid in the host product: {ref.reference}"[:200],
                    "balancingLines": [line]}
            try:
                response = self._api("POST", "balancings", content=json_text({"balancingServiceData": data}),
                                     ambiguous_writes=True)
            except _Ambiguous as exc:
                log.warning("octopus: balancing of %s outcome unknown (%s), attempt %d", ref.entry_id, exc, tries)
                if tries >= self.max_attempts:
                    raise AdapterError(f"Octopus unavailable: POST balancings failed {tries} times ({exc})") from None
                get_clock().sleep(self._backoff_seconds(tries))
                now = self.read_payments([ref]).get(ref.entry_id)
                if now is None:
                    return "the booking is no longer in Octopus"
                if now.paid:
                    return None
                state = now
                continue
            if response.status_code in (200, 201, 204):
                return None
            if 400 <= response.status_code < 500:
                message = _error_message(response)
                now = self.read_payments([ref]).get(ref.entry_id)
                if now is not None and now.paid:
                    return None
                return f"Octopus refused the payment: {message}"
            self._check(response, "balancings")
            return f"Octopus answered HTTP {response.status_code} to the payment"

    def _booking_at(self, bookyear: int, journal: str, seq: int) -> dict[str, Any] | None:
        """The booking at one identity (§2.5 ``GET /buysellbookings``; the modified feed when that answers
        400), or ``None``."""
        if not self._list_quirk:
            response = self._api("GET", "buysellbookings", params={"bookyearId": str(bookyear), "journalKey": journal,
                                                                   "documentSeqNr": str(seq)})
            if response.status_code == 404:
                return None
            if response.status_code == 400:
                log.info("octopus: GET buysellbookings answers 400, using the modified feed")
                self._list_quirk = True
            else:
                self._check(response, "buysellbookings")
                rows = self._json(response, "GET buysellbookings") or []
                return next((r for r in rows if int(r.get("documentSequenceNr") or 0) == seq
                             and r.get("journalKey") in (None, journal)), None)
        rows = self._get_list("buysellbookings/modified", {"bookyearId": str(bookyear), "journalKey": journal,
                                                           "modifiedTimeStamp": ALL_SINCE})
        return next((r for r in rows if int(r.get("documentSequenceNr") or 0) == seq
                     and r.get("journalKey") in (None, journal)), None)

    # ------------------------------------------------------------------------------ reference data

    def _load_bookyears(self, *, force: bool = False) -> list[dict[str, Any]]:
        if self._bookyears is None or force:
            rows = self._get_list("bookyears")
            self._bookyears = sorted(rows, key=lambda y: str(y.get("startDate")))
        return self._bookyears

    def _journal_rows(self, bookyear: int, *, force: bool = False) -> dict[str, dict[str, Any]]:
        if bookyear not in self._journals or force:
            rows = self._get_list(f"bookyears/{bookyear}/journals")
            self._journals[bookyear] = {str(r["journalKey"]): r for r in rows}
        return self._journals[bookyear]

    # ---------------------------------------------------------------------------------- HTTP: reads

    def _get_list(self, path: str, params: dict[str, str] | None = None, *, optional: bool = False,
                  none_on_404: bool = False) -> list[dict[str, Any]]:
        """A JSON list. ``optional``: any 4xx gives ``[]``; ``none_on_404``: a 404 ("no data") gives ``[]``."""
        response = self._api("GET", path, params=params)
        if optional and 400 <= response.status_code < 500:
            return []
        if none_on_404 and response.status_code == 404:
            return []
        self._check(response, path)
        body = self._json(response, f"GET {path}")
        if body is None:
            return []
        if not isinstance(body, list):
            raise AdapterError(f"Octopus answered {path} with a {type(body).__name__}, a list was expected")
        return body

    def _check(self, response: httpx.Response, what: str) -> None:
        """Raise :class:`AdapterError` unless the status is a success of the request's method
        (:data:`_SUCCESS`)."""
        if response.status_code not in _SUCCESS.get(response.request.method, ()):
            raise AdapterError(f"Octopus refused {what}: HTTP {response.status_code}: {_error_message(response)}")

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        """The decoded JSON body (``Decimal`` numbers, ``None`` when empty); :class:`AdapterError` when it
        is not JSON (an HTML page of a proxy or a login screen)."""
        try:
            return _loads(response.content)
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise AdapterError(f"Octopus answered {what} with something that is not JSON "
                               f"(HTTP {response.status_code}, {kind})") from None

    @staticmethod
    def _backoff_seconds(attempt: int) -> float:
        """Exponential backoff with jitter: 1, 2, 4, … s (at most 30) plus up to 1 s."""
        return min(30.0, 2.0 ** (attempt - 1)) + random.uniform(0, 1)

    # ------------------------------------------------------------------------------- HTTP: the core

    def _api(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        content: str | None = None,
        ambiguous_writes: bool = False,
    ) -> httpx.Response:
        """One dossier API call: retries, and the single re-login-and-retry on a 401.

        Returns the response (never 401 / 429 / 5xx). Raises :class:`CredentialsChanged`,
        :class:`AdapterError`, or ``_Ambiguous`` when ``ambiguous_writes`` and a write's outcome is
        unknown."""
        url = f"dossiers/{self.dossier_id}/{path}"
        token = self._dossier_token()
        response = self._send(method, url, token, params, content, ambiguous_writes)
        if response.status_code != 401:
            return response
        log.info("octopus: 401 on %s %s, logging in again once", method, path)
        token = self._recover_from_401(token)
        response = self._send(method, url, token, params, content, ambiguous_writes)
        if response.status_code == 401:
            raise CredentialsChanged("credentials changed: reconnect")
        return response

    def _send(self, method: str, url: str, token: str, params: dict[str, str] | None, content: str | None,
              ambiguous_writes: bool) -> httpx.Response:
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
            raise AdapterError(f"Octopus unavailable: {exc} ({self.max_attempts} attempts)") from None
        except _Throttled:
            raise AdapterError(f"Octopus kept answering 429 ({self.max_attempts} attempts)") from None
        raise AdapterError("Octopus: no attempt made")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Throttled):
            return exc.wait
        return float(self._backoff(state))

    def _send_once(self, method: str, url: str, token: str, params: dict[str, str] | None, content: str | None,
                   ambiguous_writes: bool) -> httpx.Response:
        write = method != "GET"
        headers = {"dossierToken": token}
        if content is not None:
            headers["Content-Type"] = "application/json"
        if self.budget is not None:
            self.budget.take()  # the dossier's shared budget (per-minute bucket)
        self.calls["writes" if write else "reads"] += 1
        path = url.split("?")[0]
        try:
            response = read_response(self._http, method, absolute_url(self._http, url), limit=limits.MAX_ANSWER_BYTES,
                                     params=params, content=content, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Transient(f"{method} {path}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # the request may have reached Octopus
            if write and ambiguous_writes:
                raise _Ambiguous(type(exc).__name__) from None
            raise _Transient(f"{method} {path}: {type(exc).__name__}") from None
        except BodyTooLarge as exc:
            raise AdapterError(f"Octopus's answer to {method} {path} is too large: {exc}") from None
        log.debug("octopus: %s %s -> %s", method, path, response.status_code)
        if response.status_code == 429:
            raise _Throttled(self._retry_after(response))
        if response.status_code >= 500:
            if write and ambiguous_writes:
                raise _Ambiguous(f"HTTP {response.status_code}")
            raise _Transient(f"{method} {path}: HTTP {response.status_code}")
        self._refuse_unexpected(method, path, response.status_code, _SUCCESS.get(method, frozenset()))
        return response

    @staticmethod
    def _refuse_unexpected(method: str, path: str, status: int, success: frozenset[int]) -> None:
        """:class:`AdapterError` for a status that is neither a success in ``success`` nor a 4xx the
        caller handles: a redirect (a login or maintenance page, a proxy) is not Octopus's answer, never
        read as success (an empty lookup would post a booking again) nor retried."""
        if status not in success and not 400 <= status < 500:
            what = "a redirect, not followed" if 300 <= status < 400 else "not a documented success"
            raise AdapterError(f"Octopus answered {method} {path} with HTTP {status} ({what})")

    @staticmethod
    def _retry_after(response: httpx.Response) -> float:
        value = response.headers.get("Retry-After", "").strip()
        return float(value) if value.isdigit() else 30.0

    # --------------------------------------------------------------------------------------- tokens

    def _load_credentials(self) -> dict[str, Any]:
        creds = self.credentials.load() or {}
        if not creds.get("user") or not creds.get("password"):
            raise CredentialsChanged("no Octopus credentials stored: connect")
        return creds

    def _cached(self, creds: dict[str, Any]) -> tuple[str, float] | None:
        """The stored dossier token when it is for this dossier and younger than 9 minutes."""
        token = creds.get("dossier_token")
        try:
            expires_at = float(creds.get("dossier_token_expires_at") or 0)
            dossier = int(creds.get("dossier_id") or 0)
        except (TypeError, ValueError):
            return None
        if token and dossier == self.dossier_id and get_clock().now() < expires_at - (TOKEN_TTL - REAUTH_AFTER):
            return str(token), expires_at
        return None

    def _adopt(self, cached: tuple[str, float]) -> str:
        self._token, self._token_expires = cached
        return cached[0]

    def _dossier_token(self) -> str:
        if self._token and get_clock().now() < self._token_expires - (TOKEN_TTL - REAUTH_AFTER):
            return self._token
        cached = self._cached(self._load_credentials())
        if cached is not None:
            return self._adopt(cached)
        with self.credentials.lock():
            creds = self._load_credentials()
            cached = self._cached(creds)
            if cached is not None:
                return self._adopt(cached)  # another invocation logged in meanwhile
            return self._login(creds)

    def _recover_from_401(self, failed: str) -> str:
        self._token = None
        with self.credentials.lock():
            creds = self._load_credentials()
            cached = self._cached(creds)
            if cached is not None and cached[0] != failed:
                return self._adopt(cached)
            return self._login(creds)

    def _login(self, creds: dict[str, Any]) -> str:
        """Both steps of §2.2 under the store's lock; saves the dossier token before using it."""
        issued = get_clock().now()
        response = self._auth_call("POST", "authentication",
                                   content=json_text({"user": str(creds["user"]), "password": str(creds["password"])}),
                                   headers={"softwareHouseUuid": self._software_house,
                                            "Content-Type": "application/json"})
        if response.status_code in (401, 403):
            raise CredentialsChanged("credentials changed: reconnect")
        if response.status_code >= 400:
            raise AdapterError(f"Octopus refused the login: HTTP {response.status_code}: {_error_message(response)}")
        token = (self._json(response, "POST authentication") or {}).get("token")
        if not token:
            raise AdapterError("Octopus answered the login without a token")
        response = self._auth_call("POST", "dossiers", params={"dossierId": str(self.dossier_id)}, content="{}",
                                   headers={"Token": str(token), "Content-Type": "application/json"})
        if response.status_code in (401, 403):
            raise CredentialsChanged("credentials changed: reconnect")
        if response.status_code >= 400:
            raise AdapterError(f"Octopus refused to open dossier {self.dossier_id}: HTTP {response.status_code}: "
                               f"{_error_message(response)}")
        body = self._json(response, "POST dossiers") or {}
        dossier_token = body.get("Dossiertoken") or body.get("dossierToken") or body.get("dossiertoken")
        if not dossier_token:
            raise AdapterError("Octopus answered the dossier connect without a dossier token")
        fresh = {**creds, "dossier_token": str(dossier_token), "dossier_token_expires_at": issued + TOKEN_TTL,
                 "dossier_id": self.dossier_id}
        self.credentials.save(fresh)
        log.info("octopus: logged in to dossier %s", self.dossier_id)
        return self._adopt((str(dossier_token), issued + TOKEN_TTL))

    def _auth_call(self, method: str, path: str, *, content: str, headers: dict[str, str],
                   params: dict[str, str] | None = None) -> httpx.Response:
        def once() -> httpx.Response:
            if self.budget is not None:
                self.budget.take()
            try:
                response = read_response(self._http, method, path, limit=limits.MAX_ANSWER_BYTES, params=params,
                                         content=content, headers=headers)
            except httpx.TransportError as exc:
                raise _Transient(f"{path}: {type(exc).__name__}") from None
            except BodyTooLarge as exc:
                raise AdapterError(f"Octopus's answer to {method} {path} is too large: {exc}") from None
            if response.status_code >= 500:
                raise _Transient(f"{path}: HTTP {response.status_code}")
            if response.status_code == 429:
                raise _Throttled(self._retry_after(response))
            self._refuse_unexpected(method, path, response.status_code, frozenset({200}))  # the token answers
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_Transient, _Throttled)),
            sleep=lambda seconds: get_clock().sleep(seconds),
            reraise=True,
        )
        try:
            return retrying(once)
        except _Transient as exc:
            raise AdapterError(f"Octopus unavailable: {exc} ({self.max_attempts} attempts)") from None
        except _Throttled:
            raise AdapterError(f"Octopus kept answering 429 ({self.max_attempts} attempts)") from None


def create_adapter(ctx: AdapterContext) -> OctopusAdapter:
    """Registry hook (``connector.adapters.ADAPTER_MODULES``): the adapter for one entity's dossier.

    ``ctx.connection["dossier_id"]`` is the dossier chosen at connect time; the software-house UUID comes
    from ``ctx.app_secret()["software_house_uuid"]``; ``ctx.base_url`` overrides the Octopus URL
    (sandbox). The user / password live in ``ctx.credentials``."""
    app = ctx.app_secret()
    adapter = OctopusAdapter(
        ctx.base_url or DEFAULT_BASE_URL,
        int(ctx.connection["dossier_id"]),
        ctx.credentials,
        software_house_uuid=str(app["software_house_uuid"]),
        transport=ctx.transport,
    )
    adapter.budget = getattr(ctx, "budget", None)
    return adapter
