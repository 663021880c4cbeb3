"""Yuki adapter: :class:`connector.ports.AccountingAdapter` over Yuki's SOAP web services (httpx + lxml).

Rules followed (``shared/reference/accounting-apis.md`` §3, seed 004 "How do I connect Yuki"):

- SOAP 1.1 document/literal to ``{base}/ws/{Service}.asmx``, ``SOAPAction`` = namespace + operation,
  parameter names spelled per service (§3.1: ``sessionID`` / ``administrationID`` on Accounting,
  AccountingInfo and Contact search, ``sessionId`` / ``administrationId`` on Sales, ``domainId`` on
  ``UpdateContact``; ``ProcessPurchaseInvoices(sessionID, administrationId, xmlDoc)`` as its documented
  signature, §3.7). ``xmlDoc`` carries the document as XML elements, never as an escaped string.
  Answers are parsed with a safe lxml parser (no entities, no network, no DTD).
- Sessions (§3.2, §3.3): the session id is kept in the credential store as ``session_id`` /
  ``session_expires_at`` (epoch seconds, 24 h after ``Authenticate``) and reused across invocations and
  runs until 10 min before that, so ``Authenticate`` (which costs budget) runs about once a day.
  Authenticating happens inside ``credentials.lock()`` after re-loading the store (another invocation
  may have done it). A stale-session fault re-authenticates once (or picks up another invocation's
  session) and retries once. A refused access key → :class:`~connector.ports.CredentialsChanged`
  (``"credentials changed: reconnect"``). Neither the key nor a session id is ever logged or put in a
  message (fault texts are scrubbed of both).
- Budget (§3.3): the daily-limit fault → :class:`~connector.ports.AdapterError` with ``resume_at`` = the
  next UTC midnight, at once and without retrying; the adapter then refuses further calls until then.
  HTTP 5xx answers that are not SOAP Faults, connection errors and timeouts are retried with
  exponential backoff and jitter (tenacity, sleeping through :func:`connector.clock.get_clock`), at most
  ``max_attempts`` tries, then ``AdapterError``. Other SOAP Faults are not retried (``AdapterError``).
  Re-sending a write whose answer was lost is safe: an invoice comes back as a duplicate ``Reference``
  (treated as already booked, below) and ``UpdateContact`` matches the contact by ``Code``.
- Relations (seed 004, §3.5): relation code = ``party.customer_number`` + ``5`` for a company, + ``0``
  for a contact (person). Codes are looked up with ``SearchContacts`` (``active`` Both, newest first;
  the search matches substrings, so rows are filtered on the exact code); several contacts sharing the
  code → the most recently created is used, nothing is created. Only a code no contact has is created,
  with ``UpdateContact``. The relation id handed back is the code (invoices reference ``ContactCode``).
  When several codes are wanted, whole pages of contacts (``All``, 100 a page) are listed first, at most
  as many pages as codes wanted, so a batch costs at most about as many calls as it has relations.
  Suppliers (``customer=False``, incoming Peppol documents) are matched **first by VAT number**
  (``SearchContacts`` ``VATNumber``, or the same page listing, exact after normalising), then by the
  relation code, and created only when neither exists; a VAT match keeps its own code, and one without
  a code gets the relation code written on it (see :meth:`YukiAdapter.ensure_relations`).
- Bookings (§3.6, §3.7, §3.10): one ``ProcessSalesInvoices`` (outgoing) / ``ProcessPurchaseInvoices``
  (incoming) call per chunk of ``batch_size`` entries, ``Process=true``, ``Reference`` = the document
  number, ``Contact/ContactCode`` = the relation id, one line per booking line with its GL account,
  ``VATType`` (the line's VAT code), ``VATPercentage`` and explicit ``LineAmount`` / ``LineVATAmount``
  (excl. VAT; sales lines also ``ProductQuantity`` 1 and ``SalesPrice``); purchases carry
  ``InvoiceAmount`` / ``InvoiceVATAmount``. Credit notes are sent with **negative** amounts (§3.9).
  Before sending, one ``SearchInvoices`` by ``Reference`` per side (100 references a call): an entry
  already booked (same reference, contact and total) is returned as booked, one whose number another
  invoice holds is refused (Yuki would refuse it as a duplicate), so neither is sent, and a re-run
  writes nothing. Each entry is checked locally first (amounts with at most 2 decimals and 10 integer digits, a
  reference, a relation, lines, numeric VAT types) and refused as :class:`BookingRejected` without being
  sent. Each invoice's own result is read: HTTP 200 with failures is not success. ``Succeeded`` →
  :class:`BookingResult` with Yuki's ``BookingNumber`` as given (it may carry letters: the engine flags
  what the host can't store) and ``DocumentID`` as ``entry_id``; failed → :class:`BookingRejected` with
  Yuki's ``Message`` and a hint; skipped (the import stops after a handful of failures) → sent again in
  a following call; a duplicate-``Reference`` failure → looked up and, when the invoice in Yuki has the
  same contact and total, returned as booked (otherwise rejected: another document has that number).
  A whole-document validation failure (nothing processed) of a chunk of several entries → each entry is
  sent on its own, so one bad document can't sink the rest. Two entries with one reference never go in
  one call (purchase: one reference *and supplier*; suppliers' numbers collide, so one purchase call may
  carry the same number for two suppliers, and results are matched in document order).
  Incoming entries (purchase invoices / credit notes) go through ``ProcessPurchaseInvoices`` only, one
  call per chunk, ``Reference`` = the supplier's invoice number; ``find_bookings`` matches them on
  ``Reference`` **and** supplier (``ContactCode``) and total.
- Exchange rates (yuki.md §3.6 / §3.7: the invoice imports carry ``Currency`` and no rate; no operation
  lists Yuki's rates, only ``Archive.Currencies``' codes): no rate is sent, Yuki applies its own table
  (``ToolMetadata.exchange_rates_read`` stays false, so the booking rules never skip for a missing rate
  themselves). An invoice Yuki refuses for want of a rate (a ``Message`` naming an exchange rate /
  ``wisselkoers``) is rejected with the connector's own reason (:func:`connector.exchange.missing_rate_text`,
  Yuki's message appended) and the hint to add the rate in Yuki; a document whose own rate (BT-111 or
  the host's) could not be passed says so in the reason.
- Company-currency amounts: foreign-currency invoices read back also get one ``AccountingInfo.asmx
  GetTransactionDetails`` call per side on the debtors / creditors account (GL ``subtype``
  :data:`DEBTORS_SUBTYPES` / :data:`CREDITORS_SUBTYPES`) over their dates: the row of the invoice's
  ``documentID`` gives ``transactionAmount`` (gross in the administration currency, EUR) and
  ``currencyRate``; the VAT in EUR is each line's VAT × ``currencyRate`` rounded half-up to the cent,
  the net the difference (the control account holds only the total; unconfirmed how Yuki rounds).
  Invoices in EUR hold the same amounts (rate 1), no call.
- Read-back: ``AccountingInfo.asmx SearchInvoices`` (the sandbox's documented design, see
  :mod:`connector.sandbox.yuki`; §3.11 names no operation returning an invoice with its lines by
  reference) by ``Reference`` (``find_bookings``) or ``DocumentID`` (``read_bookings``, ``invoiceType``
  ``Sales`` for outgoing, ``Purchase`` for incoming); amounts come in Yuki's sign and are turned back
  into the document's own sign.
- Payments (§3.8, seed 004): ``read_payments`` costs one ``OutstandingDebtorItems`` (outgoing) and / or
  one ``OutstandingCreditorItems`` (incoming) call per call, whatever the number of documents; a booked
  document absent from the open items is paid, a listed one is open (partly paid when
  ``0 < open < original``). The host never un-pays a document (seed 004), so the engine should ask only
  about documents it does not yet show as paid.
- Paid in the host -> paid in Yuki (seed 004 "When an invoice has received the status Paid in
  Teamleader Focus, it will also receive the status Paid in Yuki"): no documented Yuki operation marks
  an invoice paid (§3.8), so :meth:`YukiAdapter.register_payments` books a **general journal**
  (``Accounting.asmx ProcessJournal``, §3.4) per chunk of invoices: per invoice a credit of its open
  amount on the debtors account with the customer's ``ContactCode`` and the invoice number in the
  ``Reference`` element (a sandbox extension of ``JournalEntry``: what Yuki matches the entry to the
  open item on is unconfirmed), and the same amount debited on a transit account ("payments to be
  processed"). The transit account, not the bank, because the real bank line arrives later through the
  bank feed and is then booked against the transit account by the bookkeeper: booking the bank here
  would count the money twice. Accounts are found in the GL scheme by subtype (:data:`DEBTORS_SUBTYPES`,
  :data:`TRANSIT_SUBTYPES`); without them every document gets the reason.
- ``calls`` counts requests sent (retries included): ``reads`` (``Authenticate`` included) and
  ``writes`` (``ProcessSalesInvoices``, ``ProcessPurchaseInvoices``, ``UpdateContact``, ``ProcessJournal``).

Metadata: the GL account scheme (``GetGLAccountScheme``; the API's misspelled ``descripton``), the VAT
types of :data:`VAT_TYPES` (no Yuki operation lists them, §3.4: 1 and 2 are sourced, the rest is the
documented choice shared with the sandbox), two synthetic journals ``SALES`` (type sales) and
``PURCHASE`` (type purchase) since Yuki has no journals as entities, no currency list (``currencies``
empty: Yuki takes any ISO currency on an invoice; unconfirmed) and company currency EUR.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from lxml import etree
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from connector.adapters.signals import Transient as _Transient  # here: HTTP 5xx without a SOAP Fault, connection error, timeout
from connector import limits
from connector.http import BodyTooLarge, absolute_url, read_response, tls_context
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
    GLAccount,
    Journal,
    Party,
    PaymentInfo,
    PaymentState,
    RelationKind,
    ToolMetadata,
    VatCode,
)
from connector.exchange import missing_rate_text
from connector.money import round_money
from connector.onboarding import ToolRelation
from connector.ports import AdapterError, CredentialsChanged, CredentialStore, RelationRejected, chunked

__all__ = ["VAT_TYPES", "YukiAdapter", "create_adapter", "hint_for"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.yukiworks.nl"
BE_BASE_URL = "https://api.yukiworks.be"
NS = "http://www.theyukicompany.com/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SALES = "urn:xmlns:http://www.theyukicompany.com:salesinvoices"
NS_PURCHASE = "urn:xmlns:http://www.theyukicompany.com:purchaseinvoices"
NS_CONTACT = "urn:xmlns:http://www.theyukicompany.com:contact"
NS_JOURNAL = "urn:xmlns:http://www.theyukicompany.com:journal"
JOURNAL_CHUNK = 50  # invoices settled per ProcessJournal call (two entries each)
#: GL ``subtype`` (GetGLAccountScheme) of the receivables control account and of the transit account
#: ("payments to be processed" / kruisposten) a payment registered elsewhere is booked against. Yuki's
#: subtype texts are unconfirmed (§3.4): the sandbox's demo scheme uses these.
DEBTORS_SUBTYPES = ("debtors",)
CREDITORS_SUBTYPES = ("creditors",)
TRANSIT_SUBTYPES = ("transit",)

SESSION_TTL = 24 * 3600.0  # seconds a session lives (§3.2, client-obs.)
SESSION_MARGIN = 600.0  # re-authenticate this long before the assumed expiry
PAGE_SIZE = 100  # SearchContacts rows per page (§3.3)
SEARCH_CHUNK = 100  # SearchInvoices values per call
AMOUNT_LIMIT = Decimal(10) ** 10  # at most 10 integer digits (§3.6)
MAX_ROUNDS = 10  # + 3 per entry: bound on import calls for one post_bookings side (skips re-sent)

#: VAT types (§3.4): code -> (description, percent). 1 (21 %) and 2 (low) are sourced; the rest is the
#: documented choice the sandbox shares (3 zero, 4 reverse charge, 5 exempt, 6 not subject, 7 export,
#: 8 intra-EU, 9 low 9 % NL, 10 middle 12 % BE, 11–27 OSS rates of other EU states).
VAT_TYPES: dict[str, tuple[str, Decimal]] = {
    "1": ("High rate 21%", Decimal("21")),
    "2": ("Low rate 6%", Decimal("6")),
    "3": ("Zero rate 0%", Decimal("0")),
    "4": ("Reverse charge (VAT shifted to the customer) 0%", Decimal("0")),
    "5": ("Exempt 0%", Decimal("0")),
    "6": ("Not subject to VAT (outside scope) 0%", Decimal("0")),
    "7": ("Export outside the EU 0%", Decimal("0")),
    "8": ("Intra-EU supply / acquisition 0%", Decimal("0")),
    "9": ("Low rate 9% (NL)", Decimal("9")),
    "10": ("Middle rate 12% (BE)", Decimal("12")),
    **{
        str(code): (f"OSS {pct}% (other EU state)", Decimal(pct))
        for code, pct in zip(
            range(11, 28),
            ("5", "5.5", "7", "8", "10", "13", "14", "15", "16", "17", "19", "20", "22", "23", "24", "25", "27"),
            strict=True,
        )
    },
}

#: Yuki has no journals as entities (§3.4): invoices land in its sales / purchase processing. The admin
#: picks these two in the setup wizard (invoices and credit notes alike).
JOURNALS = (
    Journal(code="SALES", description="Yuki sales invoices", type="sales"),
    Journal(code="PURCHASE", description="Yuki purchase invoices", type="purchase"),
)

_DUPLICATE = "bestaat al een factuur met het factuurnummer"
_DUPLICATE_HINT = ("Another document with this number (other relation or amount) is already in Yuki: check the "
                   "numbering of invoices and credit notes (each company entity needs its own), then sync again.")
_HINTS: tuple[tuple[str, str], ...] = (
    (_DUPLICATE, _DUPLICATE_HINT),
    ("period closed", "The period of the document date is closed in Yuki: reopen it, then sync again."),
    ("gl account", "Check the ledger-account mapping in the integration settings: the account must exist and be "
                   "enabled in Yuki's GL account scheme."),
    ("glaccountcode", "Check the ledger-account mapping in the integration settings."),
    ("vat type", "Check the VAT-code link in the integration settings: link the VAT rate to an existing Yuki VAT "
                 "type of the same percentage."),
    ("vat percentage", "Check the VAT-code link in the integration settings: the VAT type's percentage must equal "
                       "the VAT rate's."),
    ("vatamount", "The VAT amount does not match the VAT type's percentage: check the VAT-code link."),
    ("e-mail", "Keep a single e-mail address on the relation in the host product, then sync again."),
    ("needs a name", "Give the relation a name in the host product, then sync again."),
    ("currency", "Check the document's currency."),
    ("integer digits", "An amount is too large or has more than 2 decimals for Yuki: correct the document."),
    ("invoiceamount", "The document's totals don't match its lines: correct the document, then sync again."),
    ("xml validation", "Yuki refused the document's structure: contact support with this message."),
)


class _StaleSession(Exception):
    """Yuki refused the session (unknown or expired): authenticate again."""


def hint_for(message: str) -> str:
    """What an admin should fix for a Yuki ``Message`` (§3.10), or ``""``."""
    low = message.lower()
    return next((hint for needle, hint in _HINTS if needle in low), "")


def _next_midnight_utc(now: float) -> str:
    day = datetime.fromtimestamp(now, tz=UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _fmt(amount: Decimal) -> str:
    """A Decimal as ``xs:decimal`` text (no exponent, no negative zero)."""
    if amount == 0:
        amount = abs(amount)
    return format(amount, "f")


def _dec(text: str | None) -> Decimal:
    try:
        return Decimal((text or "0").strip() or "0")
    except InvalidOperation:
        raise AdapterError(f"Yuki returned a non-decimal amount {text!r}") from None


def _signed(sign: int, amount: Decimal) -> Decimal:
    """``sign`` x ``amount`` without a negative zero."""
    value = sign * amount
    return abs(value) if value == 0 else value


def _percent(text: str | None) -> Decimal:
    value = _dec(text)
    return Decimal(format(value.normalize(), "f")) if value else Decimal(0)


def _local(el: Any) -> str:
    """An element's local name: its tag without the ``{namespace}`` of lxml's Clark notation; ``""`` for
    a comment or processing instruction (whose ``tag`` is not a string)."""
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _fields(el: etree._Element) -> dict[str, str]:
    """The stripped texts of an element's child elements by local name, the first of each name (what
    :func:`_text` gives one name at a time, in one pass over the children)."""
    out: dict[str, str] = {}
    for child in el:
        name = _local(child)
        if name and name not in out:
            out[name] = (child.text or "").strip()
    return out


def _children(el: etree._Element | None, name: str | None = None) -> list[etree._Element]:
    if el is None:
        return []
    return [c for c in el if isinstance(c.tag, str) and (name is None or _local(c) == name)]


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    found = _children(el, name)
    return found[0] if found else None


def _text(el: etree._Element | None, name: str) -> str:
    child = _child(el, name)
    return (child.text or "").strip() if child is not None else ""


def _bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1")


def _vat_key(number: str | None) -> tuple[str, str] | None:
    """A VAT number normalised for comparison: (country prefix or ``""``, the rest), letters and digits
    only, upper case; ``None`` when nothing number-like is left (empty, "n/a", fewer than 5 characters
    or no digit)."""
    text = re.sub(r"[^0-9A-Za-z]", "", number or "").upper()
    match = re.fullmatch(r"([A-Z]{2})?([0-9A-Z]+)", text)
    if match is None:
        return None
    prefix, rest = match.group(1) or "", match.group(2)
    if len(rest) < 5 or not re.search(r"\d", rest):
        return None
    return prefix, rest


def _vat_equal(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Same number; a country prefix present on one side only does not matter."""
    return a[1] == b[1] and (a[0] == b[0] or not a[0] or not b[0])


def _vat_rows(index: dict[tuple[str, str], list[dict[str, str]]], key: tuple[str, str] | None) -> list[dict[str, str]]:
    """Contacts of ``index`` whose VAT number equals ``key`` (newest first, as listed)."""
    if key is None:
        return []
    rows: list[dict[str, str]] = []
    for other, found in index.items():
        if _vat_equal(other, key):
            rows.extend(r for r in found if r not in rows)
    return rows


def _amount_problem(amount: Decimal, what: str) -> str | None:
    if round_money(amount) != amount:
        return f"{what} {amount} has more than 2 decimals (Yuki allows 2)"
    if abs(amount) >= AMOUNT_LIMIT:
        return f"{what} {amount} has more than 10 integer digits (Yuki's limit)"
    return None


class YukiAdapter:
    """Yuki, one administration, for one connection (see the module docstring for the rules).

    ``base_url`` is the host (``https://api.yukiworks.nl``, ``…yukiworks.be`` or a sandbox URL);
    ``administration_id`` the administration GUID; ``domain_id`` the domain GUID used by contact calls
    (``None``: asked once with ``GetCurrentDomain``). ``credentials`` holds ``{"access_key"}`` and, once
    authenticated, ``{"session_id", "session_expires_at"}`` (epoch seconds). ``transport`` replaces
    httpx's network transport (tests: ``httpx.WSGITransport``); ``max_attempts`` bounds the tries of one
    call; ``timeout`` is the per-request read timeout in seconds; ``batch_size`` the invoices per import
    call.
    """

    tool = "yuki"

    def __init__(
        self,
        base_url: str,
        administration_id: str,
        credentials: CredentialStore,
        *,
        domain_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = 5,
        timeout: float = 30.0,
        batch_size: int = 25,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.administration_id = administration_id
        self.domain_id = domain_id
        self.credentials = credentials
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.calls: dict[str, int] = {"reads": 0, "writes": 0}
        self._http = httpx.Client(
            base_url=self.base_url, transport=transport, timeout=httpx.Timeout(timeout, connect=10.0),
            verify=tls_context(),  # built once per process (connector.http)
            follow_redirects=False,  # a redirect is an error (_parse), never followed
        )
        self._parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
        )
        self._creds: dict[str, Any] | None = None
        self._resume_at: tuple[float, str] | None = None  # (epoch, ISO) until which the budget is spent
        self._metadata: ToolMetadata | None = None
        self._backoff = wait_exponential_jitter(initial=1, max=30, exp_base=2, jitter=1)
        #: The domain's shared call budget (:class:`connector.stores.budget.TenantBudget`): one token is
        #: taken before every request, ``Authenticate`` included (it counts against the domain, §3.3). None: off.
        self.budget: Any = None

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def __enter__(self) -> YukiAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- metadata

    def fetch_metadata(self) -> ToolMetadata:
        """GL accounts (``GetGLAccountScheme``, §3.4: ``blocked`` = not ``isEnabled``, ``balance_type``
        = ``type`` when ``B`` / ``W``), the VAT types of :data:`VAT_TYPES` (usage both), the synthetic
        journals :data:`JOURNALS`, no currency list and company currency EUR. One call. Caches the result
        on the adapter. Raises :class:`AdapterError`."""
        result = self._call("AccountingInfo", "GetGLAccountScheme", [("administrationID", self.administration_id)])
        accounts = []
        for row in _children(result):
            code = _text(row, "code")
            if not code:
                continue
            type_ = _text(row, "type")
            enabled = _text(row, "isEnabled")
            accounts.append(GLAccount(
                code=code,
                description=_text(row, "descripton") or _text(row, "description"),
                blocked=bool(enabled) and not _bool(enabled),
                balance_type=type_ if type_ in ("B", "W") else None,
            ))
        self._metadata = ToolMetadata(
            gl_accounts=tuple(accounts),
            journals=JOURNALS,
            vat_codes=tuple(VatCode(code=c, description=d, percentage=p, usage="both") for c, (d, p) in VAT_TYPES.items()),
            currencies=(),
            company_currency="EUR",
            exchange_rate_accepted=False,
        )
        return self._metadata

    # ------------------------------------------------------------------------------------- relations

    @staticmethod
    def relation_code(party: Party) -> str | None:
        """Yuki's relation code ("Relatiecode", seed 004): the host's customer number + ``5`` for a
        company, + ``0`` for a contact (person); ``None`` when the party has no customer number."""
        number = (party.customer_number or "").strip()
        if not number:
            return None
        return number + ("0" if party.kind is RelationKind.CONTACT else "5")

    def ensure_relations(self, parties: Sequence[Party], *, customer: bool = True) -> dict[str, str | RelationRejected]:
        """Find each party's Yuki contact, create only the ones Yuki doesn't have, never one twice (§3.5).

        Returns host id → relation id, the ``ContactCode`` invoices carry (a string), or
        :class:`RelationRejected` (no customer number, no name, or Yuki refused the write). Every party
        needs a customer number: the code Yuki books on is derived from it (seed 004).

        - Customers (``customer=True``): by relation code (customer number + ``5`` / ``0``) only; the
          code is returned, and created with ``UpdateContact`` when no contact has it.
        - Suppliers (``customer=False``): first by VAT number, then by relation code. A contact whose
          VAT number equals the party's after normalising (letters and digits only, upper case; a country
          prefix missing on one side is ignored) is the supplier: preferred is the one carrying the
          party's code, then one with any code, then an active one, newest first; its own code is
          returned (a bookkeeper's code is kept). A VAT match **without** a code gets the party's code
          written on it (``UpdateContact`` with its ``ID``, ``Code`` and ``Type``, nothing else) so that
          invoices can reference it, unless another contact already has that code (then that one is
          used). No VAT match → the code as for customers. Parties of one call sharing a VAT number or
          a code share one contact. A supplier without a customer number is matched only by VAT number
          to a contact that has a code (nothing is created or coded for it), else refused.

        Cost (daily budget, §3.3): for several parties whole pages of contacts (``SearchContacts``
        ``All``, 100 a page, newest first) are listed, at most as many pages as parties, and matched
        locally; only when the domain has more contacts than that are the unresolved parties searched one
        by one (``VATNumber``, then ``Code``; the search matches substrings of the stored text, so a
        VAT number stored with spaces or dots is not found that way, unconfirmed). One write per created
        or coded contact. Raises :class:`AdapterError` for tool-level failures.

        A party with an ``external_id`` (imported from or linked to Yuki, :mod:`connector.onboarding`) is
        the contact with that code, used as it is (:meth:`_ensure_linked`): never created, recoded or
        matched otherwise, and it needs no customer number."""
        unique: dict[str, Party] = {}
        for party in parties:
            unique.setdefault(party.host_id, party)
        linked = self._ensure_linked([p for p in unique.values() if p.external_id])
        result: dict[str, str | RelationRejected] = dict(linked)
        unique_all, unique = unique, {hid: p for hid, p in unique.items() if hid not in linked}
        codes: dict[str, str] = {}
        uncoded: dict[str, Party] = {}  # suppliers without a customer number: a coded VAT match may still do
        for hid, party in unique.items():
            code = self.relation_code(party)
            if code is None:
                result[hid] = RelationRejected(
                    f"relation '{party.name}' has no customer number: Yuki's relation code is derived from it")
                if not customer and party.name.strip() and _vat_key(party.vat_number) is not None:
                    uncoded[hid] = party
            elif not party.name.strip():
                result[hid] = RelationRejected(f"relation {code} has no name: Yuki needs one")
            else:
                codes[hid] = code
        if customer:
            found = self._contacts_by_code(sorted(set(codes.values())))
            for hid, code in codes.items():
                if code not in found:
                    try:
                        found[code] = self._create_contact(unique[hid], code)
                    except RelationRejected as rejected:
                        result[hid] = rejected
                        continue
                result[hid] = code
        else:
            suppliers = {hid: party for hid, party in unique.items() if hid in codes or hid in uncoded}
            result.update(self._ensure_suppliers(suppliers, codes, result))
        return {hid: result[hid] for hid in unique_all}

    def _ensure_linked(self, parties: Sequence[Party]) -> dict[str, str | RelationRejected]:
        """Parties linked to a Yuki contact by ``external_id`` (its code): host id → that code, once the
        code is found (:meth:`_contacts_by_code`: pages listed, then searched); a code no contact has any
        more is a :class:`RelationRejected` naming it. Nothing is written."""
        if not parties:
            return {}
        found = self._contacts_by_code(sorted({str(p.external_id).strip() for p in parties}))
        result: dict[str, str | RelationRejected] = {}
        for party in parties:
            code = str(party.external_id).strip()
            result[party.host_id] = code if code in found else RelationRejected(
                f"relation '{party.name}' is linked to Yuki contact {code}, which Yuki does not have (any more): "
                "correct the relation's External ID in the host product or import again")
        return result

    def list_relations(self) -> list[ToolRelation]:
        """Every contact of the domain (§3.5, ``SearchContacts`` ``All`` with an empty value, 100 a page,
        until a short page), for the import (:mod:`connector.onboarding`): ``code`` = the contact's
        ``Code`` (relatiecode; ``None`` when it has none), ``tool_id`` = its ``ID``; Yuki has no customer /
        supplier flags (``None``); ``Active`` false → inactive. Raises :class:`AdapterError`."""
        relations = []
        for row in self._search_all("All", ""):
            relations.append(ToolRelation(
                code=row["Code"] or None,
                tool_id=row["ID"],
                name=row["FullName"],
                vat_number=row["VATNumber"] or None,
                company_number=row.get("CoCNumber") or None,
                email=row.get("Email") or None,
                address=Address(
                    line_1=row.get("AddressLine_1") or None,
                    postal_code=row.get("PostCode") or None,
                    city=row.get("City") or None,
                    country=(row.get("Country") or "").upper() or None,
                ),
                active=row["Active"] != "false",
            ))
        return relations

    def _ensure_suppliers(
        self, parties: dict[str, Party], codes: dict[str, str], refusals: dict[str, str | RelationRejected]
    ) -> dict[str, str | RelationRejected]:
        """Suppliers: VAT number first, then relation code, then create (see :meth:`ensure_relations`).
        A party without a code (not in ``codes``) is settled only by a VAT match that has a code, else
        it keeps its refusal from ``refusals``."""
        vats = {hid: key for hid, party in parties.items() if (key := _vat_key(party.vat_number)) is not None}
        by_vat: dict[tuple[str, str], list[dict[str, str]]] = {}
        by_code: dict[str, dict[str, str]] = {}
        seen: dict[str, int] = {}  # contact ID -> order taken (listing and searches run newest first)

        def coded_vat_match(hid: str) -> bool:
            return any(row["Code"] for row in _vat_rows(by_vat, vats.get(hid)))

        def settled(hid: str) -> bool:
            return coded_vat_match(hid) if hid in vats else codes.get(hid) in by_code

        def take(rows: Iterable[dict[str, str]]) -> None:
            for row in rows:
                if row["ID"] in seen:
                    continue
                seen[row["ID"]] = len(seen)
                if row["Code"]:
                    by_code.setdefault(row["Code"], row)  # newest first: the first row of a code wins
                key = _vat_key(row["VATNumber"])
                if key is not None:
                    by_vat.setdefault(key, []).append(row)

        complete = False
        if len(parties) > 1:
            page = 1
            while page <= len(parties) and not all(settled(hid) for hid in parties):
                rows = self._search_contacts("All", "", page)
                take(rows)
                if len(rows) < PAGE_SIZE:
                    complete = True
                    break
                page += 1
        if not complete:
            searched: set[str] = set()
            for hid in sorted(parties, key=lambda h: codes.get(h, "")):
                vat = vats.get(hid)
                if vat is not None and not _vat_rows(by_vat, vat) and vat[1] not in searched:
                    searched.add(vat[1])
                    take(self._search_all("VATNumber", vat[1]))
            missing = sorted({codes[hid] for hid in parties
                              if hid in codes and codes[hid] not in by_code and not coded_vat_match(hid)})
            by_code.update(self._contacts_by_code(missing, list_first=False))  # pages already listed

        result: dict[str, str | RelationRejected] = {}
        made_vat: list[tuple[tuple[str, str], str]] = []  # (VAT key, code) settled by this call
        for hid in sorted(parties, key=lambda h: h not in codes):  # coded parties first (they may create)
            party, code, vat = parties[hid], codes.get(hid), vats.get(hid)
            same_vat = next((c for k, c in made_vat if vat is not None and _vat_equal(k, vat)), None)
            if same_vat is not None:
                result[hid] = same_vat
                continue
            rows = _vat_rows(by_vat, vat)
            if code is None:  # no customer number: only an existing coded supplier will do
                coded = [r for r in rows if r["Code"]]
                if coded and vat is not None:
                    best = max(coded, key=lambda r: (r["Active"] != "false", -seen.get(r["ID"], 0)))
                    result[hid] = best["Code"]
                    made_vat.append((vat, best["Code"]))
                else:
                    result[hid] = refusals[hid]
                continue
            try:
                if rows:
                    best = max(rows, key=lambda r: (r["Code"] == code, bool(r["Code"]), r["Active"] != "false",
                                                    -seen.get(r["ID"], 0)))
                    if best["Code"]:
                        code = best["Code"]
                    elif code not in by_code:  # the supplier exists without a code: give it ours
                        by_code[code] = self._set_code(best, code, party)
                elif code not in by_code:
                    by_code[code] = self._create_contact(party, code)
            except RelationRejected as rejected:
                result[hid] = rejected
                continue
            result[hid] = code
            if vat is not None:
                made_vat.append((vat, code))
        return result

    def _search_all(self, option: str, value: str) -> list[dict[str, str]]:
        """Every contact ``SearchContacts`` finds for ``option`` / ``value`` (all pages, newest first)."""
        rows: list[dict[str, str]] = []
        page = 1
        while True:
            batch = self._search_contacts(option, value, page)
            rows.extend(batch)
            if len(batch) < PAGE_SIZE:
                return rows
            page += 1

    def _set_code(self, row: dict[str, str], code: str, party: Party) -> dict[str, str]:
        """Write relation ``code`` on an existing contact that has none (``UpdateContact`` by ``ID``, with
        its ``Type`` so the update changes nothing else)."""
        E = f"{{{NS_CONTACT}}}"
        doc = etree.Element(E + "Contact", nsmap={None: NS_CONTACT})
        etree.SubElement(doc, E + "ID").text = row["ID"]
        etree.SubElement(doc, E + "Code").text = code
        etree.SubElement(doc, E + "Type").text = row.get("Type") or ("0" if party.kind is RelationKind.CONTACT else "2")
        self._update_contact(doc, code, party)
        return {**row, "Code": code}

    def _contacts_by_code(self, codes: Sequence[str], *, list_first: bool = True) -> dict[str, dict[str, str]]:
        """code → the most recently created contact with exactly that code, for the codes that exist.
        Several codes: whole pages are listed first (``list_first``), then the rest searched one by one."""
        wanted = set(codes)
        found: dict[str, dict[str, str]] = {}
        if not wanted:
            return found
        if len(wanted) > 1 and list_first:
            page, complete = 1, False
            while page <= len(wanted) and len(found) < len(wanted):
                rows = self._search_contacts("All", "", page)
                for row in rows:
                    if row["Code"] in wanted:
                        found.setdefault(row["Code"], row)  # newest first: the first one wins
                if len(rows) < PAGE_SIZE:
                    complete = True
                    break
                page += 1
            if complete or len(found) == len(wanted):
                return found
        for code in sorted(wanted - set(found)):
            page = 1
            while True:
                rows = self._search_contacts("Code", code, page)
                match = next((row for row in rows if row["Code"] == code), None)
                if match is not None:
                    found[code] = match
                    break
                if len(rows) < PAGE_SIZE:
                    break
                page += 1
        return found

    def _search_contacts(self, option: str, value: str, page: int) -> list[dict[str, str]]:
        result = self._call("Contact", "SearchContacts", [
            ("domainID", self._domain()), ("searchOption", option), ("searchValue", value),
            ("sortOrder", "CreatedDesc"), ("modifiedAfter", ""), ("active", "Both"), ("pageNumber", str(page)),
        ])
        contacts = [c for c in result.iter() if isinstance(c.tag, str) and _local(c) == "Contact"]
        return [{"ID": c.get("ID", ""), "Code": _text(c, "Code"), "FullName": _text(c, "FullName"),
                 "VATNumber": _text(c, "VATNumber"), "Type": _text(c, "Type"), "Active": _text(c, "Active").lower(),
                 **{name: _text(c, name) for name in ("Email", "AddressLine_1", "PostCode", "City", "Country", "CoCNumber")}}
                for c in contacts]

    def _create_contact(self, party: Party, code: str) -> dict[str, str]:
        E = f"{{{NS_CONTACT}}}"
        doc = etree.Element(E + "Contact", nsmap={None: NS_CONTACT})
        emails = [e for e in re.split(r"[;,\s]+", party.email or "") if e]
        values = (
            ("Code", code), ("Type", "0" if party.kind is RelationKind.CONTACT else "2"), ("FullName", party.name),
            ("AddressLine_1", party.address.line_1), ("PostCode", party.address.postal_code),
            ("City", party.address.city), ("Country", party.address.country),
            ("Email", emails[0] if emails else None),  # Yuki keeps one address (§3.6)
            ("VATNumber", party.vat_number), ("CoCNumber", party.company_number),
        )
        for name, value in values:
            if value:
                etree.SubElement(doc, E + name).text = str(value)
        answer = self._update_contact(doc, code, party)
        return {"ID": _text(answer, "ContactID"), "Code": code, "FullName": party.name,
                "VATNumber": party.vat_number or "", "Type": "0" if party.kind is RelationKind.CONTACT else "2",
                "Active": "true"}

    def _update_contact(self, doc: etree._Element, code: str, party: Party) -> etree._Element:
        """``UpdateContact``; the ``ContactResult``, or :class:`RelationRejected` when Yuki refused it."""
        result = self._call("Contact", "UpdateContact", [("domainId", self._domain()), ("xmlDoc", doc)], write=True)
        answer = next((c for c in result.iter() if isinstance(c.tag, str) and _local(c) == "ContactResult"), result)
        if not _bool(_text(answer, "Succeeded")):
            message = _text(answer, "Message") or "no reason given"
            raise RelationRejected(f"Yuki refused relation {code} ({party.name}): {message}")
        return answer

    def _domain(self) -> str:
        if self.domain_id is None:
            result = self._call("AccountingInfo", "GetCurrentDomain", [])
            domain = result if _local(result) == "Domain" else _child(result, "Domain")
            if domain is None or not domain.get("ID"):
                raise AdapterError("Yuki's GetCurrentDomain answered without a domain")
            self.domain_id = domain.get("ID")
        return self.domain_id

    # -------------------------------------------------------------------------------------- bookings

    def post_bookings(self, entries: Sequence[BookingEntry]) -> list[BookingResult | BookingRejected]:
        """Post entries with one import call per chunk of ``batch_size`` (§3.6, §3.7); one result per
        entry, in order. See the module docstring for the per-invoice handling. Raises
        :class:`AdapterError` for tool-level failures (faults, budget, Yuki unreachable)."""
        results: list[BookingResult | BookingRejected | None] = [None] * len(entries)
        sides: dict[Direction, list[int]] = {}
        for index, entry in enumerate(entries):
            problem = self._local_problem(entry)
            if problem is not None:
                results[index] = BookingRejected(host_id=entry.host_id, reason=problem, hint=hint_for(problem)
                                                 or "Correct the document in the host product, then sync again.")
            else:
                sides.setdefault(entry.direction, []).append(index)
        for direction, indexes in sides.items():
            self._post_side(direction, entries, indexes, results)
        missing = [entries[i].host_id for i, r in enumerate(results) if r is None]
        if missing:  # pragma: no cover - every path sets a result
            raise AdapterError(f"Yuki: no result for {len(missing)} entries")
        return [r for r in results if r is not None]

    def _local_problem(self, entry: BookingEntry) -> str | None:
        """Why Yuki would refuse ``entry`` (checked before sending), or ``None``."""
        if not entry.reference.strip():
            return "the document has no number: Yuki books an invoice by its Reference"
        if not entry.relation_id.strip():
            return "the document has no relation code"
        if not entry.lines:
            return "the document has no lines"
        if not re.fullmatch(r"[A-Z]{3}", entry.currency):
            return f"Currency '{entry.currency}' is not an ISO 4217 code"
        for what, amount in (("total", entry.gross), ("net total", entry.net), ("VAT total", entry.vat)):
            problem = _amount_problem(amount, what)
            if problem:
                return problem
        for n, line in enumerate(entry.lines, 1):
            if not line.gl_account.strip():
                return f"line {n}: no GL account"
            if not line.vat_code.strip().isdigit():
                return f"line {n}: VAT type '{line.vat_code}' is not a Yuki VAT type number"
            for what, amount in (("amount", line.net_amount), ("VAT amount", line.vat_amount)):
                problem = _amount_problem(amount, f"line {n}: {what}")
                if problem:
                    return problem
        return None

    @staticmethod
    def _key(entry: BookingEntry) -> tuple[str, str]:
        # Sales references are unique per administration; purchase ones per supplier (see the sandbox).
        reference = entry.reference.strip()
        return (reference, "") if entry.direction is Direction.OUTGOING else (reference, entry.relation_id)

    def _post_side(
        self,
        direction: Direction,
        entries: Sequence[BookingEntry],
        indexes: list[int],
        results: list[BookingResult | BookingRejected | None],
    ) -> None:
        # Pre-flight (one read per 100 references): an entry already booked is returned as such, one
        # whose number another invoice holds is refused, so neither is sent (nor re-sent every run).
        existing = self._rows_by_reference(direction, [entries[i].reference for i in indexes])
        to_send: list[int] = []
        for index in indexes:
            entry = entries[index]
            rows = existing.get(entry.reference.strip(), [])
            booked = self._matching(entry, rows)
            if booked is not None:
                results[index] = booked
            elif self._conflicting(entry, rows):
                reason = (f"Yuki already holds another invoice with number {entry.reference.strip()} (other relation or "
                          f"amount) and refuses a second one with the same number")
                results[index] = BookingRejected(host_id=entry.host_id, reason=reason, hint=_DUPLICATE_HINT)
            else:
                to_send.append(index)
        queue: deque[int] = deque(to_send)
        solo: set[int] = set()  # entries to send alone (their chunk failed validation as a whole)
        unanswered: dict[int, int] = {}
        lookups: list[tuple[int, str | None]] = []  # (index, duplicate message or None)
        rounds, max_rounds = 0, MAX_ROUNDS + 3 * len(to_send)  # every round settles or splits something
        while queue:
            rounds += 1
            if rounds > max_rounds:
                raise AdapterError(f"Yuki kept skipping invoices ({max_rounds} import calls for one batch)")
            chunk: list[int] = []
            keys: set[tuple[str, str]] = set()
            deferred: list[int] = []
            while queue and len(chunk) < self.batch_size:
                index = queue.popleft()
                if index in solo and chunk:
                    deferred.append(index)
                    break
                key = self._key(entries[index])
                if key in keys:
                    deferred.append(index)
                    continue
                chunk.append(index)
                keys.add(key)
                if index in solo:
                    break
            queue.extendleft(reversed(deferred))
            answer = self._import(direction, [entries[i] for i in chunk])
            if answer["message"] is not None and not answer["invoices"]:
                if len(chunk) > 1:
                    solo.update(chunk)
                    queue.extendleft(reversed(chunk))
                    continue
                message = answer["message"]
                results[chunk[0]] = BookingRejected(host_id=entries[chunk[0]].host_id, reason=message,
                                                    hint=hint_for(message))
                continue
            invoices: list[dict[str, Any]] = answer["invoices"]
            skipped_from = len(invoices) - answer["skipped"]
            # Results come in document order; purchase references may repeat in one call (other supplier),
            # so each entry takes the first unclaimed result of its reference (its own supplier's, if the
            # answer names the supplier).
            by_reference: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for pos, inv in enumerate(invoices):
                by_reference.setdefault(inv["reference"], []).append((pos, inv))
            requeue: list[int] = []
            for index in chunk:
                entry = entries[index]
                candidates = by_reference.get(entry.reference.strip(), [])
                pick = next((c for c in candidates if c[1]["contact"] == entry.relation_id), None) or (
                    candidates[0] if candidates else None)
                pos, inv = pick if pick is not None else (None, None)
                if pick is not None:
                    candidates.remove(pick)
                if inv is None:
                    unanswered[index] = unanswered.get(index, 0) + 1
                    if unanswered[index] > 2:
                        results[index] = BookingRejected(host_id=entry.host_id,
                                                         reason="Yuki gave no result for this invoice",
                                                         hint="Sync again; if it persists, contact support.")
                    else:
                        requeue.append(index)
                elif inv["succeeded"]:
                    if inv["booking_number"] and inv["document_id"]:
                        results[index] = BookingResult(host_id=entry.host_id, booking_number=inv["booking_number"],
                                                       entry_id=inv["document_id"])
                    else:
                        lookups.append((index, None))
                elif (pos is not None and pos >= skipped_from) or inv["message"].lower().startswith("skipped"):
                    requeue.append(index)
                elif _DUPLICATE in inv["message"].lower():
                    lookups.append((index, inv["message"]))
                else:
                    results[index] = self._rejected(entry, inv["message"] or "refused without a message")
            if requeue:
                log.info("yuki: %d invoices skipped by the import, sending them again", len(requeue))
            queue.extendleft(reversed(requeue))
        if lookups:
            found = self.find_bookings([entries[i] for i, _ in lookups])
            for index, duplicate in lookups:
                entry = entries[index]
                if entry.host_id in found:
                    results[index] = found[entry.host_id]
                elif duplicate is not None:
                    results[index] = BookingRejected(host_id=entry.host_id, reason=duplicate, hint=_DUPLICATE_HINT)
                else:
                    results[index] = BookingRejected(
                        host_id=entry.host_id, reason="Yuki accepted the invoice but it could not be read back",
                        hint="Sync again; the invoice will be recognised as already booked.")

    @staticmethod
    def _rejected(entry: BookingEntry, message: str) -> BookingRejected:
        """A refused invoice: Yuki's ``Message`` with its hint, or, when Yuki had no exchange rate for the
        invoice's currency, the connector's reason for a missing rate (Yuki's message appended)."""
        low = message.lower()
        if entry.currency != "EUR" and ("exchange rate" in low or "wisselkoers" in low):
            reason, hint = missing_rate_text(entry.currency, entry.entry_date, "Yuki")
            if entry.exchange_rate is not None:
                reason = (f"no exchange rate for {entry.currency} on {entry.entry_date.isoformat()} in Yuki, and the"
                          f" document's own rate ({entry.exchange_rate}) can't be passed: Yuki's invoice import takes no rate")
            return BookingRejected(host_id=entry.host_id, reason=f"{reason} (Yuki: {message})", hint=hint)
        return BookingRejected(host_id=entry.host_id, reason=message, hint=hint_for(message))

    def _import(self, direction: Direction, batch: Sequence[BookingEntry]) -> dict[str, Any]:
        """One ``ProcessSalesInvoices`` / ``ProcessPurchaseInvoices`` call; the parsed response:
        ``{"message": top-level message or None, "skipped": TotalSkipped, "invoices": [...]}``."""
        if direction is Direction.OUTGOING:
            doc = self._sales_doc(batch)
            result = self._call("Sales", "ProcessSalesInvoices",
                                [("administrationId", self.administration_id), ("xmlDoc", doc)],
                                session_param="sessionId", write=True)
        else:
            doc = self._purchase_doc(batch)
            result = self._call("Purchase", "ProcessPurchaseInvoices",
                                [("administrationId", self.administration_id), ("xmlDoc", doc)], write=True)
        response = next((c for c in result.iter() if isinstance(c.tag, str) and _local(c).endswith("ImportResponse")),
                        None)
        if response is None:
            raise AdapterError("Yuki's import answered without an import response")
        invoices = [
            {
                "succeeded": _bool(_text(inv, "Succeeded")),
                "processed": _bool(_text(inv, "Processed")),
                "reference": _text(inv, "Reference"),
                "message": _text(inv, "Message"),
                "booking_number": _text(inv, "BookingNumber"),
                "document_id": _text(inv, "DocumentID"),
                "contact": _text(inv, "Contact"),
            }
            for inv in _children(response, "Invoice")
        ]
        message = _text(response, "Message") or None
        skipped_text = _text(response, "TotalSkipped")
        skipped = int(skipped_text) if skipped_text.isdigit() else 0
        if not invoices and message is None:
            message = "Yuki processed none of the invoices and gave no reason"
        return {"message": message, "skipped": skipped, "invoices": invoices}

    @staticmethod
    def _sign(entry: BookingEntry) -> int:
        return -1 if entry.kind is DocumentKind.CREDIT_NOTE else 1

    def _sales_doc(self, batch: Sequence[BookingEntry]) -> etree._Element:
        E = f"{{{NS_SALES}}}"
        root = etree.Element(E + "SalesInvoices", nsmap={None: NS_SALES})

        def add(parent: etree._Element, name: str, value: Any) -> etree._Element:
            el = etree.SubElement(parent, E + name)
            if value is not None:
                el.text = _fmt(value) if isinstance(value, Decimal) else str(value)
            return el

        for entry in batch:
            sign = self._sign(entry)
            inv = add(root, "SalesInvoice", None)
            add(inv, "Reference", entry.reference.strip())
            add(inv, "Subject", (entry.description or entry.reference)[:250])
            add(inv, "PaymentMethod", "ElectronicTransfer")
            if entry.payment_reference:
                add(inv, "PaymentID", entry.payment_reference)
            add(inv, "Process", "true")
            add(inv, "EmailToCustomer", "false")
            add(inv, "Date", entry.entry_date.isoformat())
            if entry.due_date is not None:
                add(inv, "DueDate", entry.due_date.isoformat())
            add(inv, "Currency", entry.currency)
            contact = add(inv, "Contact", None)
            add(contact, "ContactCode", entry.relation_id)
            lines = add(inv, "InvoiceLines", None)
            for line in entry.lines:
                el = add(lines, "InvoiceLine", None)
                add(el, "Description", line.description or entry.reference)
                add(el, "ProductQuantity", "1")
                add(el, "LineAmount", sign * line.net_amount)
                add(el, "LineVATAmount", sign * line.vat_amount)
                product = add(el, "Product", None)
                add(product, "Description", line.description or entry.reference)
                add(product, "SalesPrice", sign * line.net_amount)
                add(product, "VATPercentage", line.vat_percentage)
                add(product, "VATIncluded", "false")
                add(product, "VATType", line.vat_code.strip())
                add(product, "GLAccountCode", line.gl_account.strip())
        return root

    def _purchase_doc(self, batch: Sequence[BookingEntry]) -> etree._Element:
        E = f"{{{NS_PURCHASE}}}"
        root = etree.Element(E + "PurchaseInvoices", nsmap={None: NS_PURCHASE})

        def add(parent: etree._Element, name: str, value: Any) -> etree._Element:
            el = etree.SubElement(parent, E + name)
            if value is not None:
                el.text = _fmt(value) if isinstance(value, Decimal) else str(value)
            return el

        for entry in batch:
            sign = self._sign(entry)
            inv = add(root, "PurchaseInvoice", None)
            add(inv, "Process", "true")
            add(inv, "Reference", entry.reference.strip())
            add(inv, "Date", entry.entry_date.isoformat())
            if entry.due_date is not None:
                add(inv, "DueDate", entry.due_date.isoformat())
            add(inv, "InvoiceAmount", sign * entry.gross)
            add(inv, "InvoiceVATAmount", sign * entry.vat)
            add(inv, "Currency", entry.currency)
            if entry.description:
                add(inv, "Remarks", entry.description[:250])
            contact = add(inv, "Contact", None)
            add(contact, "ContactCode", entry.relation_id)
            lines = add(inv, "InvoiceLines", None)
            for line in entry.lines:
                el = add(lines, "InvoiceLine", None)
                add(el, "Description", line.description or entry.reference)
                add(el, "LineAmount", sign * line.net_amount)
                add(el, "LineVATAmount", sign * line.vat_amount)
                add(el, "LineVATType", line.vat_code.strip())
                add(el, "LineVATPercentage", line.vat_percentage)
                add(el, "GLAccountCode", line.gl_account.strip())
        return root

    def find_bookings(self, entries: Sequence[BookingEntry]) -> dict[str, BookingResult]:
        """Entries already in Yuki, found by ``Reference`` (``SearchInvoices``, 100 per call) and
        accepted only when the invoice found is processed, has the entry's ``ContactCode`` (for incoming
        entries: the same supplier, suppliers' numbers collide) and its total in Yuki's sign (so another
        document with the same number is not taken for it). Sales invoices for outgoing, purchase
        invoices for incoming entries (one search per side and 100 references). Returns host id
        → :class:`BookingResult`. Raises :class:`AdapterError`."""
        found: dict[str, BookingResult] = {}
        groups: dict[Direction, list[BookingEntry]] = {}
        for entry in entries:
            groups.setdefault(entry.direction, []).append(entry)
        for direction, group in groups.items():
            rows = self._rows_by_reference(direction, [e.reference for e in group])
            for entry in group:
                match = self._matching(entry, rows.get(entry.reference.strip(), []))
                if match is not None:
                    found[entry.host_id] = match
        return found

    def _rows_by_reference(self, direction: Direction, references: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        kind = "Sales" if direction is Direction.OUTGOING else "Purchase"
        rows: dict[str, list[dict[str, Any]]] = {}
        for batch in chunked(sorted({r.strip() for r in references}), SEARCH_CHUNK):
            for row in self._search_invoices(kind, "Reference", batch):
                rows.setdefault(row["Reference"], []).append(row)
        return rows

    def _matching(self, entry: BookingEntry, rows: Sequence[dict[str, Any]]) -> BookingResult | None:
        """The booked invoice among ``rows`` (same reference) that is ``entry``: processed, same contact,
        same total in Yuki's sign."""
        total = self._sign(entry) * entry.gross
        match = next((r for r in rows if r["ContactCode"] == entry.relation_id and r["Processed"]
                      and r["TotalAmount"] == total), None)
        if match is None:
            return None
        return BookingResult(host_id=entry.host_id, booking_number=match["BookingNumber"], entry_id=match["ID"])

    @staticmethod
    def _conflicting(entry: BookingEntry, rows: Sequence[dict[str, Any]]) -> bool:
        """Would Yuki refuse ``entry`` as a duplicate of one of ``rows``? Sales: any invoice with the
        reference; purchase: one of the same supplier (see :meth:`_key`)."""
        if entry.direction is Direction.OUTGOING:
            return bool(rows)
        return any(r["ContactCode"] == entry.relation_id for r in rows)

    def read_bookings(
        self, booking_ids: Sequence[str], kind: DocumentKind, direction: Direction = Direction.OUTGOING, *, lines: bool = True
    ) -> dict[str, BookedEntry]:
        """Read invoices back by ``DocumentID`` (the ``entry_id``; ``SearchInvoices``, 100 per call), with
        their lines (``lines`` changes nothing: they come in the same call), in the document's own sign: ``kind`` credit note → Yuki's negative amounts are
        negated back. ``direction`` picks the side: sales invoices for outgoing, purchase invoices for
        incoming documents; an id of the other side, or unknown, is left out. Keyed by the id as given.
        Raises :class:`AdapterError`."""
        sign = -1 if kind is DocumentKind.CREDIT_NOTE else 1
        invoice_type = "Sales" if direction is Direction.OUTGOING else "Purchase"
        wanted = {i.strip().lower(): i for i in booking_ids if i.strip()}
        out: dict[str, BookedEntry] = {}
        dates: dict[str, str] = {}
        for batch in chunked(sorted(wanted), SEARCH_CHUNK):
            for row in self._search_invoices(invoice_type, "DocumentID", batch):
                key = row["ID"].lower()
                if key not in wanted:
                    continue
                dates[key] = row["Date"]
                out[wanted[key]] = BookedEntry(
                    entry_id=row["ID"],
                    booking_number=row["BookingNumber"],
                    reference=row["Reference"],
                    currency=row["Currency"],
                    net=_signed(sign, row["TotalAmountExclVAT"]),
                    vat=_signed(sign, row["TotalVATAmount"]),
                    gross=_signed(sign, row["TotalAmount"]),
                    lines=tuple(
                        BookingLine(gl_account=ln["GLAccountCode"], vat_code=ln["VATType"],
                                    vat_percentage=ln["VATPercentage"], net_amount=_signed(sign, ln["LineAmount"]),
                                    vat_amount=_signed(sign, ln["LineVATAmount"]), description=ln["Description"])
                        for ln in row["Lines"]
                    ),
                    **({} if row["Currency"] not in ("", "EUR") else
                       {"company_currency": "EUR", "company_net": _signed(sign, row["TotalAmountExclVAT"]),
                        "company_vat": _signed(sign, row["TotalVATAmount"]), "company_gross": _signed(sign, row["TotalAmount"]),
                        "exchange_rate": Decimal(1)}),
                )
        foreign = [e for e in out.values() if e.company_currency is None]
        if foreign:
            days = [d for d in (dates.get(e.entry_id.lower(), "")[:10] for e in foreign) if d]
            details = self._transaction_details(direction, min(days), max(days)) if days else {}
            for key, booked in list(out.items()):
                row = details.get(booked.entry_id.lower())
                if booked.company_currency is not None or row is None:
                    continue
                rate = row["currencyRate"]
                gross = abs(row["transactionAmount"]) * (-1 if booked.gross < 0 else 1)
                vat = sum((round_money(ln.vat_amount * rate) for ln in booked.lines), Decimal(0))
                out[key] = booked.model_copy(update={"company_currency": "EUR", "company_net": gross - vat, "company_vat": vat,
                                                     "company_gross": gross, "exchange_rate": rate})
        return out

    def _transaction_details(self, direction: Direction, start: str, end: str) -> dict[str, dict[str, Any]]:
        """``documentID`` (lower case) -> ``{"transactionAmount", "currencyRate"}`` of the rows on the debtors
        (outgoing) / creditors (incoming) account dated ``start`` .. ``end`` (ISO dates; ``GetTransactionDetails``,
        yuki.md §6); ``{}`` when the GL scheme has no such account."""
        subtypes = DEBTORS_SUBTYPES if direction is Direction.OUTGOING else CREDITORS_SUBTYPES
        scheme = self._call("AccountingInfo", "GetGLAccountScheme", [("administrationID", self.administration_id)])
        code = next((_text(r, "code") for r in _children(scheme) if _text(r, "subtype").casefold() in subtypes), "")
        if not code:
            return {}
        result = self._call("AccountingInfo", "GetTransactionDetails", [
            ("administrationID", self.administration_id), ("GLAccountCode", code), ("StartDate", start),
            ("EndDate", end), ("financialMode", 0),
        ])
        rows: dict[str, dict[str, Any]] = {}
        for item in _children(result):
            document_id = _text(item, "documentID").lower()
            rate = _text(item, "currencyRate")
            if document_id and rate:
                rows[document_id] = {"transactionAmount": _dec(_text(item, "transactionAmount")), "currencyRate": _dec(rate)}
        return rows

    def read_payments(self, bookings: Sequence[BookedRef]) -> dict[str, PaymentState]:
        """Payment state of booked documents in bulk, keyed by ``entry_id`` (§3.8, seed 004 "If an invoice
        is reconciled in Yuki, this is set as paid").

        One ``OutstandingDebtorItems`` call when ``bookings`` holds outgoing documents and one
        ``OutstandingCreditorItems`` call when it holds incoming ones (``includeBankTransactions`` false),
        whatever their number: never a call per document (daily budget, §3.3). Both lists hold open items
        only, matched on ``DocumentID`` (= ``entry_id``):

        - listed → ``paid=False``, ``open_amount`` = ``OpenAmount`` in the document's own sign (Yuki's
          credit-note items are negative, so a credit note's is negated back); partly paid is
          ``0 < open_amount < original``. An item listed with ``OpenAmount`` 0 counts as paid.
        - absent → reconciled in full: ``paid=True``, ``open_amount`` 0. ``paid_on`` stays ``None``:
          neither list says when an item was paid.
        - outgoing only: an entry whose ``DocumentID`` is not listed but whose ``Reference`` is → that
          item (sales references are unique per administration). Incoming entries match on
          ``DocumentID`` alone: suppliers' numbers collide, so another supplier's open invoice with the
          same number says nothing about this one.

        Bookings without an ``entry_id`` are left out. The caller must only pass documents it booked
        (an absent item reads as paid; items of a just-booked invoice may show up with a delay in real
        Yuki, §3.8). Raises :class:`AdapterError`."""
        sides: dict[Direction, list[BookedRef]] = {}
        for ref in bookings:
            if ref.entry_id.strip():
                sides.setdefault(ref.direction, []).append(ref)
        out: dict[str, PaymentState] = {}
        for direction in (Direction.OUTGOING, Direction.INCOMING):
            refs = sides.get(direction)
            if not refs:
                continue
            items = self._outstanding_items(direction)
            by_id = {item["DocumentID"].lower(): item for item in items if item["DocumentID"]}
            by_reference: dict[str, list[dict[str, Any]]] = {}
            for item in items:
                by_reference.setdefault(item["Reference"], []).append(item)
            for ref in refs:
                sign = -1 if ref.kind is DocumentKind.CREDIT_NOTE else 1
                item = by_id.get(ref.entry_id.strip().lower())
                if item is None and direction is Direction.OUTGOING:
                    same_reference = by_reference.get(ref.reference.strip(), [])
                    item = same_reference[0] if len(same_reference) == 1 else None
                if item is None or item["OpenAmount"] == 0:
                    out[ref.entry_id] = PaymentState(entry_id=ref.entry_id, paid=True, open_amount=Decimal(0))
                else:
                    out[ref.entry_id] = PaymentState(entry_id=ref.entry_id, paid=False,
                                                     open_amount=_signed(sign, item["OpenAmount"]))
        return out

    def register_payments(self, items: Sequence[tuple[BookedRef, PaymentInfo]]) -> dict[str, str | None]:
        """Give Yuki the paid status of outgoing invoices the host has as paid in full (seed 004), keyed by
        ``entry_id``: ``None`` = settled (now or before), a string = why not.

        Calls: one ``OutstandingDebtorItems`` (open items, matched as in :meth:`read_payments`: on
        ``DocumentID``, else a unique ``Reference``); an invoice no longer listed is paid already →
        ``None`` with nothing written (so a second call never pays twice). When something is open: one
        ``GetGLAccountScheme`` (the debtors and transit accounts, by subtype) and one ``ProcessJournal``
        per :data:`JOURNAL_CHUNK` invoices, ``<Journal xmlns="urn:xmlns:http://www.theyukicompany.com:journal">``
        with ``AdministrationID``, ``DocumentSubject``, ``JournalType`` ``GeneralJournal`` and per
        invoice two ``JournalEntry`` (§3.4): ``{ContactCode, EntryDate = paid_on, GLAccount = debtors,
        Amount = −open (Yuki's sign), Description, Reference = invoice number}`` and ``{EntryDate,
        GLAccount = transit, Amount = +open, Description}``. Yuki's open amount is settled, not
        ``PaymentInfo.amount`` (the host has the invoice paid in full).

        A journal refused as a whole (``Succeeded`` false) of several invoices is sent again one invoice
        at a time; a refused single invoice is read back (paid meanwhile → ``None``) else gets Yuki's
        ``Message`` (e.g. a closed period). Only outgoing documents are taken. Raises
        :class:`AdapterError` for call-level failures (budget spent, faults)."""
        out: dict[str, str | None] = {}
        todo: list[tuple[BookedRef, PaymentInfo]] = []
        for ref, info in items:
            if ref.direction is not Direction.OUTGOING:
                out[ref.entry_id] = "only sales invoices can be marked paid in Yuki from the host product"
            elif not ref.entry_id.strip():
                out[ref.entry_id] = "the invoice has no Yuki document id"
            else:
                todo.append((ref, info))
        if not todo:
            return out

        def open_items() -> dict[str, dict[str, Any]]:
            items_ = self._outstanding_items(Direction.OUTGOING)
            by_id = {i["DocumentID"].lower(): i for i in items_ if i["DocumentID"]}
            by_reference: dict[str, list[dict[str, Any]]] = {}
            for i in items_:
                by_reference.setdefault(i["Reference"], []).append(i)
            found = {}
            for ref, _ in todo:
                item = by_id.get(ref.entry_id.strip().lower())
                if item is None:
                    same = by_reference.get(ref.reference.strip(), [])
                    item = same[0] if len(same) == 1 else None
                if item is not None and item["OpenAmount"] != 0:
                    found[ref.entry_id] = item
            return found

        opened = open_items()
        pending = []
        for ref, info in todo:
            item = opened.get(ref.entry_id)
            if item is None:
                out[ref.entry_id] = None  # not listed as open: paid in Yuki already
            elif not item["ContactCode"]:
                out[ref.entry_id] = "the customer of this invoice has no relation code in Yuki"
            else:
                pending.append((ref, info, item))
        if not pending:
            return out
        debtors = transit = None
        for row in _children(self._call("AccountingInfo", "GetGLAccountScheme", [("administrationID", self.administration_id)])):
            subtype, enabled = _text(row, "subtype").casefold(), _text(row, "isEnabled")
            if enabled and not _bool(enabled):
                continue
            if debtors is None and subtype in DEBTORS_SUBTYPES:
                debtors = _text(row, "code")
            if transit is None and subtype in TRANSIT_SUBTYPES:
                transit = _text(row, "code")
        if not debtors or not transit:
            missing = "debtors account" if not debtors else "transit account (payments to be processed)"
            for ref, _, _ in pending:
                out[ref.entry_id] = f"Yuki's GL scheme has no {missing} to book the payment on"
            return out

        def journal(chunk: Sequence[tuple[BookedRef, PaymentInfo, dict[str, Any]]]) -> tuple[bool, str]:
            E = f"{{{NS_JOURNAL}}}"
            root = etree.Element(E + "Journal", nsmap={None: NS_JOURNAL})

            def add(parent: etree._Element, name: str, value: Any) -> etree._Element:
                el = etree.SubElement(parent, E + name)
                if value is not None:
                    el.text = _fmt(value) if isinstance(value, Decimal) else str(value)
                return el

            add(root, "AdministrationID", self.administration_id)
            add(root, "DocumentSubject", "Payments registered in the host product")
            add(root, "JournalType", "GeneralJournal")
            for ref, info, item in chunk:
                text = f"Paid in the host product: {item['Reference'] or ref.reference}"[:250]
                for account, amount, with_contact in ((debtors, -item["OpenAmount"], True), (transit, item["OpenAmount"], False)):
                    entry = add(root, "JournalEntry", None)
                    if with_contact:
                        add(entry, "ContactCode", item["ContactCode"])
                    add(entry, "EntryDate", info.paid_on.isoformat())
                    add(entry, "GLAccount", account)
                    add(entry, "Amount", amount)
                    add(entry, "Description", text)
                    if with_contact:
                        add(entry, "Reference", item["Reference"] or ref.reference)
            result = self._call("Accounting", "ProcessJournal",
                                [("administrationID", self.administration_id), ("xmlDoc", root)], write=True)
            response = next((c for c in result.iter() if isinstance(c.tag, str) and _local(c) == "JournalImportResponse"), result)
            return _bool(_text(response, "Succeeded")), _text(response, "Message")

        singles: list[tuple[BookedRef, PaymentInfo, dict[str, Any]]] = []
        for chunk in chunked(pending, JOURNAL_CHUNK):
            ok, message = journal(chunk)
            if ok:
                out.update({ref.entry_id: None for ref, _, _ in chunk})
            elif len(chunk) > 1:
                singles.extend(chunk)
            else:
                singles.append((chunk[0][0], chunk[0][1], {**chunk[0][2], "_message": message}))
        refused: dict[str, str] = {}
        for ref, info, item in singles:
            if "_message" in item:
                refused[ref.entry_id] = item["_message"]
                continue
            ok, message = journal([(ref, info, item)])
            if ok:
                out[ref.entry_id] = None
            else:
                refused[ref.entry_id] = message
        if refused:
            still_open = open_items()
            for entry_id, message in refused.items():
                out[entry_id] = (f"Yuki refused the payment: {message or 'no reason given'}"
                                 if entry_id in still_open else None)
        return out

    def _outstanding_items(self, direction: Direction) -> list[dict[str, Any]]:
        """The open items of one side (``OutstandingDebtorItems`` / ``OutstandingCreditorItems``), one call."""
        operation = "OutstandingDebtorItems" if direction is Direction.OUTGOING else "OutstandingCreditorItems"
        result = self._call("Accounting", operation, [
            ("administrationID", self.administration_id), ("includeBankTransactions", False), ("sortOrder", "DateAsc"),
        ])
        return [
            {
                "DocumentID": _text(item, "DocumentID") or item.get("ID", ""),
                "Reference": _text(item, "Reference"),
                "ContactCode": _text(item, "ContactCode"),
                "OpenAmount": _dec(_text(item, "OpenAmount")),
                "OriginalAmount": _dec(_text(item, "OriginalAmount")),
            }
            for item in result.iter()
            if isinstance(item.tag, str) and _local(item) == "Item"
        ]

    def _search_invoices(self, kind: str, option: str, values: Iterable[str]) -> list[dict[str, Any]]:
        result = self._call("AccountingInfo", "SearchInvoices", [
            ("administrationID", self.administration_id), ("invoiceType", kind), ("searchOption", option),
            ("searchValues", list(values)),
        ])
        rows = []
        for inv in (c for c in result.iter() if _local(c) == "Invoice"):
            f = _fields(inv)
            lines = [_fields(ln) for ln in _children(_child(inv, "InvoiceLines"), "InvoiceLine")]
            rows.append({
                "ID": inv.get("ID", ""),
                "Type": f.get("Type", ""),
                "Reference": f.get("Reference", ""),
                "BookingNumber": f.get("BookingNumber", ""),
                "Processed": _bool(f.get("Processed", "")),
                "Currency": f.get("Currency", ""),
                "Date": f.get("Date", ""),
                "ContactCode": f.get("ContactCode", ""),
                "TotalAmountExclVAT": _dec(f.get("TotalAmountExclVAT", "")),
                "TotalVATAmount": _dec(f.get("TotalVATAmount", "")),
                "TotalAmount": _dec(f.get("TotalAmount", "")),
                "Lines": [
                    {
                        "Description": ln.get("Description", ""),
                        "GLAccountCode": ln.get("GLAccountCode", ""),
                        "VATType": ln.get("VATType", ""),
                        "VATPercentage": _percent(ln.get("VATPercentage", "")),
                        "LineAmount": _dec(ln.get("LineAmount", "")),
                        "LineVATAmount": _dec(ln.get("LineVATAmount", "")),
                    }
                    for ln in lines
                ],
            })
        return rows

    # ------------------------------------------------------------------------------------- SOAP core

    def _call(
        self,
        service: str,
        operation: str,
        params: list[tuple[str, Any]],
        *,
        session_param: str = "sessionID",
        write: bool = False,
    ) -> etree._Element:
        """One authorised call: the session first, one re-authentication on a stale-session fault.
        Returns the ``{operation}Result`` element. Raises :class:`AdapterError` /
        :class:`CredentialsChanged`."""
        session = self._session_id()
        try:
            return self._post(service, operation, [(session_param, session), *params], write=write)
        except _StaleSession:
            log.info("yuki: session refused on %s, authenticating again", operation)
        session = self._renew_session(session)
        try:
            return self._post(service, operation, [(session_param, session), *params], write=write)
        except _StaleSession:
            raise AdapterError(f"Yuki refused a fresh session on {operation}") from None

    def _post(self, service: str, operation: str, params: list[tuple[str, Any]], *, write: bool) -> etree._Element:
        """Send one SOAP 1.1 request, retrying transient failures; parse the answer or its fault."""
        if self._resume_at is not None:
            until, iso = self._resume_at
            if get_clock().now() < until:
                raise AdapterError("Yuki's daily limit of web-service calls for this domain is spent", resume_at=iso)
            self._resume_at = None
        body = self._envelope(operation, params)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._backoff,
            retry=retry_if_exception_type(_Transient),
            sleep=lambda seconds: get_clock().sleep(seconds),
            reraise=True,
        )
        try:
            response = retrying(self._send_once, service, operation, body, write)
        except _Transient as exc:
            raise AdapterError(f"Yuki unavailable: {exc} ({self.max_attempts} attempts)") from None
        return self._parse(operation, response, params)

    def _send_once(self, service: str, operation: str, body: bytes, write: bool) -> httpx.Response:
        if self.budget is not None:
            self.budget.take()  # the domain's shared daily budget: AdapterError(resume_at) when spent
        self.calls["writes" if write else "reads"] += 1
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}{operation}"'}
        try:
            response = read_response(self._http, "POST", absolute_url(self._http, f"ws/{service}.asmx"),
                                     limit=limits.MAX_ANSWER_BYTES, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise _Transient(f"{operation}: {type(exc).__name__}") from None
        except BodyTooLarge as exc:
            raise AdapterError(f"Yuki's answer to {operation} is too large: {exc}") from None
        log.debug("yuki: %s -> %s", operation, response.status_code)
        if response.status_code >= 500 and self._fault_text(response) is None:
            raise _Transient(f"{operation}: HTTP {response.status_code}")
        return response

    @staticmethod
    def _envelope(operation: str, params: list[tuple[str, Any]]) -> bytes:
        envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
        body = etree.SubElement(envelope, f"{{{SOAP11}}}Body")
        call = etree.SubElement(body, f"{{{NS}}}{operation}", nsmap={None: NS})
        for name, value in params:
            el = etree.SubElement(call, f"{{{NS}}}{name}")
            if isinstance(value, etree._Element):
                el.append(value)
            elif isinstance(value, list | tuple):
                for item in value:
                    etree.SubElement(el, f"{{{NS}}}string").text = str(item)
            elif isinstance(value, bool):
                el.text = "true" if value else "false"
            elif value is not None:
                el.text = str(value)
        return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")

    def _document(self, response: httpx.Response) -> etree._Element | None:
        try:
            root = etree.fromstring(response.content, self._parser)
        except etree.XMLSyntaxError:
            return None
        if root.getroottree().docinfo.doctype:
            return None
        return root

    def _fault_text(self, response: httpx.Response) -> str | None:
        """The ``faultstring`` (SOAP 1.1) or ``Reason/Text`` (SOAP 1.2) of a fault answer, else ``None``."""
        if "xml" not in response.headers.get("Content-Type", ""):
            return None
        root = self._document(response)
        if root is None:
            return None
        fault = next((el for el in root.iter() if isinstance(el.tag, str) and _local(el) == "Fault"), None)
        if fault is None:
            return None
        text = next((el.text for el in fault.iter() if isinstance(el.tag, str) and _local(el) in ("faultstring", "Text")),
                    None)
        return (text or "").strip() or "SOAP Fault without a message"

    def _parse(self, operation: str, response: httpx.Response, params: list[tuple[str, Any]]) -> etree._Element:
        fault = self._fault_text(response)
        if fault is not None:
            self._raise_fault(operation, self._scrub(fault, params))
        if response.status_code != 200:  # SOAP 1.1 over HTTP: 200, or 500 with a Fault (handled above)
            what = " (a redirect, not followed)" if 300 <= response.status_code < 400 else ""
            raise AdapterError(f"Yuki answered HTTP {response.status_code} to {operation}{what}")
        root = self._document(response)
        if root is None:
            raise AdapterError(f"Yuki answered {operation} with unreadable XML")
        if _local(root) != "Envelope" or etree.QName(root).namespace not in (SOAP11, "http://www.w3.org/2003/05/soap-envelope"):
            # an HTML page (a login or maintenance page, a proxy) or other XML: not Yuki's answer
            raise AdapterError(f"Yuki answered {operation} with something that is not a SOAP envelope "
                               f"({response.headers.get('Content-Type', 'no content type')})")
        result = next((el for el in root.iter() if isinstance(el.tag, str) and _local(el) == f"{operation}Result"), None)
        if result is None:
            raise AdapterError(f"Yuki's answer to {operation} has no {operation}Result")
        return result

    def _scrub(self, text: str, params: list[tuple[str, Any]]) -> str:
        secrets = {str(v) for n, v in params if n.lower() in ("accesskey", "sessionid") and v}
        creds = self._creds or {}
        secrets.update(str(creds[k]) for k in ("access_key", "session_id") if creds.get(k))
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def _raise_fault(self, operation: str, text: str) -> None:
        low = text.lower()
        if "daily limit" in low or "maximum number of" in low:
            now = get_clock().now()
            iso = _next_midnight_utc(now)
            self._resume_at = (datetime.fromisoformat(iso).timestamp(), iso)
            raise AdapterError("Yuki's daily limit of web-service calls for this domain is spent", resume_at=iso)
        if operation == "Authenticate":
            log.warning("yuki: the access key was refused")
            raise CredentialsChanged("credentials changed: reconnect")
        if "session" in low:
            raise _StaleSession()
        if "no rights" in low:
            raise AdapterError(f"Yuki refused {operation}: {text} (check the access key's rights in Yuki, then "
                               f"reconnect)")
        raise AdapterError(f"Yuki refused {operation}: {text}")

    # ------------------------------------------------------------------------------------- sessions

    def _load(self) -> dict[str, Any]:
        creds = self.credentials.load() or {}
        if not creds.get("access_key"):
            raise CredentialsChanged("no Yuki access key stored: connect")
        self._creds = creds
        return creds

    @staticmethod
    def _fresh(creds: dict[str, Any]) -> bool:
        try:
            expires = float(creds.get("session_expires_at") or 0)
        except (TypeError, ValueError):
            expires = 0.0
        return bool(creds.get("session_id")) and get_clock().now() < expires - SESSION_MARGIN

    def _session_id(self) -> str:
        creds = self._creds if self._creds is not None else self._load()
        if self._fresh(creds):
            return str(creds["session_id"])
        with self.credentials.lock():
            creds = self._load()
            if self._fresh(creds):
                return str(creds["session_id"])
            return self._authenticate(creds)

    def _renew_session(self, failed: str) -> str:
        with self.credentials.lock():
            creds = self._load()
            if creds.get("session_id") and creds["session_id"] != failed and self._fresh(creds):
                return str(creds["session_id"])  # another invocation authenticated meanwhile
            return self._authenticate(creds)

    def _authenticate(self, creds: dict[str, Any]) -> str:
        """``Authenticate(accessKey)`` under the lock; the session is saved before it is used (§3.2)."""
        now = get_clock().now()
        result = self._post("Accounting", "Authenticate", [("accessKey", str(creds["access_key"]))], write=False)
        session = (result.text or "").strip()
        try:
            uuid.UUID(session)
        except ValueError:
            raise AdapterError("Yuki's Authenticate answered without a session id") from None
        fresh = {**creds, "session_id": session, "session_expires_at": now + SESSION_TTL}
        self.credentials.save(fresh)
        self._creds = fresh
        log.info("yuki: authenticated (new session)")
        return session


#: Documents per ProcessBatch invocation and per import call (:func:`connector.adapters.documents_per_batch`):
#: §3.3 allows several invoices per ``xmlDoc`` (maximum unconfirmed; 100 is our choice, well inside a
#: Lambda's time and SOAP message size) and one call counts once against the domain's daily budget.
DOCUMENTS_PER_BATCH = 100


def create_adapter(ctx: AdapterContext) -> YukiAdapter:
    """Registry hook (``connector.adapters.ADAPTER_MODULES``): the adapter for one entity's Yuki
    administration. ``ctx.connection`` holds ``administration_id`` and ``domain_id`` (optional) chosen at
    connect time, and optionally ``country`` (``BE`` → ``api.yukiworks.be``); ``ctx.base_url`` overrides
    the host (sandbox). The access key is in ``ctx.credentials``; Yuki needs no app secret."""
    connection = ctx.connection
    default = BE_BASE_URL if str(connection.get("country") or "").upper() == "BE" else DEFAULT_BASE_URL
    adapter = YukiAdapter(
        ctx.base_url or connection.get("base_url") or default,
        str(connection["administration_id"]),
        ctx.credentials,
        domain_id=connection.get("domain_id"),
        transport=ctx.transport,
        batch_size=DOCUMENTS_PER_BATCH,
    )
    adapter.budget = getattr(ctx, "budget", None)
    return adapter
