"""A loopback simulator of Yuki's SOAP web services (werkzeug WSGI app), for tests and the demo.

It follows ``shared/reference/accounting-apis.md`` §3 (and §0, §4) and the Yuki product rules of the
host's support article "How do I connect Yuki" (``shared/seeds/004``: relation code = host number + ``5``
for companies / ``0`` for contacts; booking number "fiscal year + 0000 + invoice number"; the host can't
store booking numbers with letters or separators).

Services (§3.1), at ``/ws/{Service}.asmx`` (case-insensitive), namespace ``http://www.theyukicompany.com/``:

- SOAP 1.1 (``Content-Type: text/xml``, ``SOAPAction: "http://www.theyukicompany.com/{Operation}"``) and
  SOAP 1.2 (``Content-Type: application/soap+xml; action="…"``; without an action the body element
  names the operation). A WSDL (document/literal, SOAP 1.1 and 1.2 bindings) is served at
  ``GET …asmx?WSDL``; a bare ``GET`` answers a small HTML page listing the operations.
- ``Accounting.asmx``: ``Authenticate(accessKey)``, ``Administrations(sessionID)``,
  ``AdministrationID(sessionID, administrationName)``, ``CheckOutstandingItem(sessionID, Reference)``,
  ``OutstandingDebtorItems`` / ``OutstandingCreditorItems(sessionID, administrationID,
  includeBankTransactions, sortOrder)``, ``ProcessJournal(sessionID, administrationID, xmlDoc)``.
- ``AccountingInfo.asmx``: ``Authenticate``, ``Administrations``, ``GetCurrentDomain(sessionID)``,
  ``GetGLAccountScheme(sessionID, administrationID)`` (typed ``GlAccount`` rows with the API's misspelled
  ``descripton``, §3.4), ``SearchInvoices`` (the read-back, see below) and ``GetTransactionDetails
  (sessionID, administrationID, GLAccountCode, StartDate, EndDate, financialMode)`` (yuki.md §6: typed
  ``TransactionInfo`` rows, see "Exchange rates").
- ``Sales.asmx``: ``Authenticate``, ``Administrations``, ``ProcessSalesInvoices(sessionId,
  administrationId, xmlDoc)``.
- ``Purchase.asmx``: ``ProcessPurchaseInvoices(sessionID, administrationId, xmlDoc)``.
- ``Contact.asmx``: ``SearchContacts(sessionID, domainID, searchOption, searchValue, sortOrder,
  modifiedAfter, active, pageNumber)``, ``UpdateContact(sessionID, domainId, xmlDoc)``.

Parameter names are checked exactly, case included (§3.1): a missing or unexpected parameter is a SOAP
Fault naming it (and the right spelling when only the case differs). ``xmlDoc`` must carry the document
as XML child elements (§3.1); an entity-escaped string is a validation failure.

Call-level errors are SOAP Faults, HTTP 500 (§3.10), ``faultcode`` ``soap:Client`` for malformed
requests and ``soap:Server`` otherwise; texts (unconfirmed, this module's own):

- :data:`FAULT_ACCESS_KEY` (bad key), :data:`FAULT_SESSION` (unknown or expired session),
  :data:`FAULT_DAILY_LIMIT` (budget spent), ``"No rights: …"`` (a key restricted to other services, an
  administration or domain outside the session's domain), ``"Domain is inactive"``,
  ``"Missing parameter …"`` / ``"Unexpected parameter …"``, and ASMX's own texts for an unknown
  SOAPAction or unreadable XML. No fault text ever contains a key or a session id.

Behaviour chosen where the reference marks a fact (unconfirmed) or is silent:

- Sessions (§3.2): ``Authenticate`` returns a new GUID session valid 24 h (``session_ttl``); older
  sessions stay valid until their own expiry. ``Authenticate`` is served on Accounting, AccountingInfo
  and Sales. A session belongs to the key's domain.
- Budget (§3.3): every call that passes authentication counts against its domain's budget per UTC day
  (``daily_limit``, default 1,000), ``Authenticate`` included; a call with a wrong parameter name, an
  unknown session or a bad key is refused before counting. Over the limit every call (``Authenticate``
  too) gets :data:`FAULT_DAILY_LIMIT` until the next UTC midnight; refused calls are not counted. One call
  counts once however many invoices it carries.
- Invoices (§3.6, §3.7): the whole ``xmlDoc`` is first checked against the documented structure
  (XSD-like: root element and namespace, known elements only, required elements, each element at most
  once unless repeatable, lexical types of decimals / dates / booleans / integers / enumerations;
  element order is not checked). On a failure nothing is processed and the response has no ``Invoice``
  element, all totals 0 and a top-level ``Message`` starting with ``"XML validation failed"``.
  Then invoice by invoice, each with its own ``Succeeded`` / ``Processed`` / ``Message`` (sales also
  ``EmailSent``, §3.6; purchase also ``Contact`` = the supplier's code, §3.7); a failed
  invoice is rolled back fully, a contact it created included. **After 5 failed invoices
  (:data:`MAX_FAILED`) the import stops**: the remaining invoices are answered ``Succeeded=false``,
  ``Processed=false``, ``Message="Skipped: …"`` and counted in ``TotalSkipped``. ``Invoice`` elements come
  in document order.
- Per-invoice rules (messages are this module's own except the duplicate one): ``Process=true`` needs a
  ``Reference``; a duplicate ``Reference`` fails with "Er bestaat al een factuur met het factuurnummer …"
  (§3.10) — sales: unique per administration; purchase: unique per administration **and supplier**
  (suppliers' numbers collide; "supplier" = the contact the invoice resolves to, or the same
  ``ContactCode``); ``Date`` required; ``Currency`` empty (administration currency) or three
  capital letters; the administration's ``closed_until`` date closes earlier periods; the contact's
  ``EmailAddress`` holds one address; a new contact needs a name; each line's ``GLAccountCode`` exists
  and is enabled; ``VATType`` is in :data:`VAT_TYPES` and ``VATPercentage`` (when given) equals its
  percentage; ``LineAmount`` / ``LineVATAmount`` / ``SalesPrice`` / ``InvoiceAmount`` have at most 2
  decimals and 10 integer digits (§3.6); ``LineAmount`` within 0.01 of ``ProductQuantity`` x
  ``SalesPrice`` when both are given; ``LineVATAmount`` within :data:`VAT_TOLERANCE`
  (1.00; Yuki's own limit is undocumented) of ``LineAmount`` x the VAT percentage; purchase ``InvoiceAmount`` (and ``InvoiceVATAmount`` when given) equal the lines' totals.
- Credit notes (§3.9, unconfirmed): the same operations with **negative** line amounts / prices (a
  negative total). Amounts are stored and read back in Yuki's sign (credit note negative).
- Booking number (seed 004): Yuki numbers each processed invoice per administration, per side (sales /
  purchase) and per fiscal year (= calendar year of ``Date``) with ``booking_number_format``, default
  ``"{year}0000{seq}"`` (2025, 17 → ``"2025000017"``); an administration can be given a format with
  letters (``"F{year}-{seq:04d}"``) to show the host refusing it. Each processed invoice also gets a
  ``DocumentID`` (GUID, as in the outstanding items of §3.8). Both are returned as **extra elements**
  ``BookingNumber`` and ``DocumentID`` of the response's ``Invoice`` element (sandbox extension) and by
  ``SearchInvoices``.
- Read-back (sandbox design; no documented Yuki operation returns an invoice by reference with its
  lines, §3.11): ``AccountingInfo.asmx SearchInvoices(sessionID, administrationID, invoiceType,
  searchOption, searchValues)``; ``invoiceType`` ``Sales`` / ``Purchase`` / ``All``; ``searchOption``
  ``Reference`` / ``DocumentID`` / ``BookingNumber``; ``searchValues`` an ``ArrayOfString`` of at most 100
  values (exact match, case-sensitive). Answers ``<Invoices><Invoice ID="{DocumentID}">`` with ``Type``,
  ``Reference``, ``BookingNumber``, ``Processed``, ``Date``, ``DueDate``, ``Currency``, ``Subject``,
  ``ContactCode``, ``ContactName``, ``TotalAmountExclVAT``, ``TotalVATAmount``, ``TotalAmount``,
  ``OpenAmount`` and ``InvoiceLines/InvoiceLine{Description, GLAccountCode, VATType, VATPercentage,
  LineAmount, LineVATAmount}``, Yuki's sign.
- Exchange rates (yuki.md: the invoice imports have ``Currency`` and no rate, so Yuki applies its own):
  each administration keeps a table (:meth:`YukiSandbox.add_exchange_rate`: from a start date on, 1 unit
  of a currency = rate units of the administration currency). An invoice in another currency gets the
  rate with the latest start on or before its ``Date``; with none it fails (``Succeeded=false``,
  "No exchange rate for currency RSD on 2024-05-01 in this administration": the wording is this
  module's own; that Yuki refuses rather than books at some rate is its choice too). Never rate 1 for
  a foreign currency. ``GetTransactionDetails`` lists the processed invoices dated ``StartDate`` ..
  ``EndDate`` (inclusive) with a line on ``GLAccountCode``: on the debtors (sales) / creditors (purchase)
  account (GL ``subtype`` ``Debtors`` / ``Creditors``) one row per invoice with the total, on any other
  account one row per invoice line booked on it (amount excl. VAT); ``transactionAmount`` in the
  administration currency (each line's amount and VAT × rate rounded half-up to the cent, then summed),
  ``transactionAmountForeignCurrency`` in the invoice currency, debit positive / credit negative (a sales
  invoice debits the debtors, a purchase invoice credits the creditors; credit notes the other way),
  ``currencyRate``, ``currency``, ``documentID`` = the invoice's ``DocumentID``, ``documentReference``
  its ``Reference``, ``glAccountCode``, ``transactionDate``, ``description``, ``contactCode``,
  ``fullName``; ``financialMode`` is accepted and ignored (its meaning is not documented).
- Contacts created by an invoice whose ``ContactCode`` is unknown take the invoice's contact data (and
  that code). An invoice without ``ContactCode`` matches by type + name among contacts **without** a code
  (client-obs.) before creating one. An existing contact is not updated by an invoice.
- ``UpdateContact`` (§3.5): root ``<Contact xmlns="urn:xmlns:http://www.theyukicompany.com:contact">``
  (namespace unconfirmed) with ``ID``, ``Code``, ``Type`` (0 person, 2 company), ``FullName``,
  ``FirstName``, ``MiddleName``, ``LastName``, ``AddressLine_1/2``, ``PostCode``, ``City``, ``Country``,
  ``MailAddressLine_1``, ``MailPostCode``, ``MailCity``, ``MailCountry``, ``Email``, ``Phone``,
  ``Website``, ``VATNumber``, ``CoCNumber``, ``BankAccount``, ``Active``. Matching: ``ID`` (unknown ID:
  failure), then ``Code`` (most recently created wins), then same ``Type`` + ``FullName`` (exact or with
  ``, . " -`` and spaces stripped, case-insensitive) among contacts without a code, narrowed by
  ``Email``, most recent wins; no match → create. A duplicate code is not an error. Answers
  ``<ContactResult><Succeeded/><Action>Created|Updated</Action><ContactID/><Code/><Message/>`` (HTTP 200;
  a refused contact has ``Succeeded=false`` and a message).
- ``SearchContacts`` (§3.5): 100 per page (``pageNumber`` from 1); ``searchValue`` matches as a
  case-insensitive substring of the chosen field (``Code`` too; ``All`` searches every field, empty
  matches everything); ``sortOrder`` ``Name`` (default), ``LastName``, ``CreatedAsc/Desc``,
  ``ModifiedAsc/Desc``, ``HID``; ``active`` ``Both`` (default) / ``Active`` / ``Inactive``;
  ``modifiedAfter`` an ISO date-time or empty. ``domainID`` may be the domain's GUID or, as in
  single-administration setups (§3.2), one of its administrations' GUIDs.
- Outstanding items (§3.8): a processed invoice opens an item of its gross amount (Yuki's sign: an
  invoice positive, a credit note negative, on both sides; the sign of creditor items in real Yuki is
  unconfirmed). :meth:`YukiSandbox.mark_paid` reconciles (part of) a sales or purchase item; a fully
  paid item disappears from ``CheckOutstandingItem`` (``<OutstandingItems/>`` without ``Item``) and from
  ``OutstandingDebtorItems`` (sales) / ``OutstandingCreditorItems`` (purchase), which list **open items
  only**, ``Item ID="{DocumentID}"`` with ``OpenAmount`` and ``OriginalAmount``; a partly paid item has
  ``0 < |OpenAmount| < |OriginalAmount|``. No operation tells when an item was paid.
- General journals (§3.4 ``ProcessJournal``; its answer and any link to open items are unconfirmed: **a
  sandbox design**). ``xmlDoc`` = ``<Journal xmlns="urn:xmlns:http://www.theyukicompany.com:journal">``
  with ``AdministrationID`` / ``AdministrationCoCNumber``, ``DocumentSubject``, ``JournalType``
  (``GeneralJournal``, the default), ``ProjectID``, ``ProjectCode`` and repeated ``JournalEntry{ContactName,
  ContactCode, EntryDate, GLAccount, Amount (debit +, credit −), Description, Reference}``; ``Reference``
  is a **sandbox extension**: the sales invoice number an entry on the debtors account is allocated to.
  The journal is checked as a whole and booked all or nothing: the structure (as invoices, a failure
  answers "XML validation failed: …"), an ``AdministrationID`` other than the call's, a ``JournalType``
  other than ``GeneralJournal``, fewer than two entries, entries that don't sum to 0, an ``EntryDate``
  missing or in the closed period, an unknown or blocked ``GLAccount``, an amount with more than 2
  decimals or 10 integer digits, an unknown ``ContactCode`` / ``ContactName``, an entry on a debtors
  account (GL ``subtype`` ``Debtors``) without a contact. An entry on a debtors account **with a**
  ``Reference`` settles that contact's open sales item with that reference (Yuki's matching of a
  payment to an invoice): ``-Amount`` is paid off, so a credit of 121.00 pays an invoice of 121.00; it is
  refused when the contact has no open sales item with that reference, or the entry is of the wrong sign
  or above what is open (so a journal sent twice can never settle twice). ``LastPaymentDate`` becomes
  the entry's ``EntryDate``. Entries without ``Reference`` and on other accounts only book. The answer is
  ``<JournalImportResponse>`` with ``TimeStamp``, ``AdministrationId``, ``Succeeded``, ``TotalEntries``,
  ``DocumentID`` (GUID of the booked journal, empty when refused) and ``Message`` (HTTP 200 either way,
  like the invoice imports, §3.10). :meth:`YukiSandbox.journals` lists booked journals;
  :meth:`YukiSandbox.undo_payments` re-opens an item in full ("a later change of the payment status in
  Yuki", seed 004).
- VAT types (§3.4; only 1 and 2 are sourced): :data:`VAT_TYPES` — 1 high 21 %, 2 low 6 %, 3 zero 0 %,
  4 reverse charge 0 %, 5 exempt 0 %, 6 not subject 0 %, 7 export outside the EU 0 %, 8 intra-EU 0 %,
  9 low 9 % (NL), 10 middle 12 % (BE), and 11–27 OSS rates of other EU states (5 … 27 %).
- GL accounts (§3.4): ``type`` is ``B`` (balance sheet) or ``W`` (profit and loss) like
  ``GLAccountBalance``'s ``BalanceType``; ``subtype`` free text.

Admin set-up (Python side): :meth:`add_domain`, :meth:`add_administration`, :meth:`add_access_key`,
:meth:`add_gl_account`, :meth:`add_contact`; readers :meth:`invoices`, :meth:`contacts`,
:meth:`budget_used`; test hooks :meth:`fail_next`, :meth:`expire_sessions`, :meth:`mark_paid`;
counters :meth:`calls`. All time reads go through :func:`connector.clock.get_clock`.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

from lxml import etree
from werkzeug.wrappers import Request, Response

from connector.clock import get_clock
from connector.models import JournalSettings
from connector.money import round_money
from connector.sandbox.admin import DEMO_RATES, AdminRequest, Administration, HostRate

__all__ = [
    "FAULT_ACCESS_KEY",
    "FAULT_DAILY_LIMIT",
    "FAULT_SESSION",
    "MAX_FAILED",
    "VAT_TYPES",
    "YukiSandbox",
    "demo_administration",
]

NS = "http://www.theyukicompany.com/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_SALES = "urn:xmlns:http://www.theyukicompany.com:salesinvoices"
NS_SALES_RESPONSE = "urn:xmlns:http://www.theyukicompany.com:salesinvoicesresponse"
NS_PURCHASE = "urn:xmlns:http://www.theyukicompany.com:purchaseinvoices"
NS_PURCHASE_RESPONSE = "urn:xmlns:http://www.theyukicompany.com:purchaseinvoicesresponse"
NS_CONTACT = "urn:xmlns:http://www.theyukicompany.com:contact"
NS_JOURNAL = "urn:xmlns:http://www.theyukicompany.com:journal"

SESSION_TTL = 24 * 3600  # seconds (§3.2, client-obs.)
DAILY_LIMIT = 1000  # calls per domain per UTC day (§3.3)
PAGE_SIZE = 100  # SearchContacts (§3.3)
MAX_FAILED = 5  # failed invoices after which an import stops (§3.7 "a handful"; chosen)
MAX_SEARCH_VALUES = 100
#: ``TransactionInfo`` elements ``GetTransactionDetails`` fills (yuki.md §6, the WSDL's type; the others stay out).
_TRANSACTION_FIELDS = {
    "id": "string", "transactionDate": "dateTime", "description": "string", "transactionAmount": "decimal",
    "transactionAmountForeignCurrency": "decimal", "currencyRate": "decimal", "currency": "string",
    "fullName": "string", "contactCode": "string", "glAccountCode": "string", "documentID": "string",
    "documentReference": "string",
}
#: Largest difference a line's stated VAT may have from its base x the VAT code's rate. The real tool's
#: limit is not documented (its API reference has the line's LineVATAmount writable and gives no limit), so
#: it is kept at one currency unit -- EN 16931 BR-CO-17's tolerance, within which a valid e-invoice's
#: own VAT is booked -- no stricter than the tool is known to be, and still refusing a VAT amount that
#: is plainly wrong. Unconfirmed against the live service.
VAT_TOLERANCE = Decimal("1.00")
AMOUNT_LIMIT = Decimal(10) ** 10  # at most 10 integer digits (§3.6)

FAULT_ACCESS_KEY = "Authentication failed: the access key is not valid"
FAULT_SESSION = "Invalid or expired session: authenticate again"
FAULT_DAILY_LIMIT = "The daily limit of web service calls for this domain has been reached"

#: VAT types (§3.4): code -> (description, percent). Only 1 (21 %) and 2 (low) are sourced; the rest is
#: this sandbox's documented choice (the connector's Yuki adapter carries the same table).
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

_PAYMENT_METHODS = frozenset({
    "Unspecified", "ElectronicTransfer", "DirectCollection", "Cash", "DebitCard", "CreditCard", "Ideal",
    "PayPal", "Online", "Other",
})  # only ElectronicTransfer is sourced (§3.6); the others are this module's guess
_CONTACT_TYPES = frozenset({"Company", "Person"})
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
    remove_comments=True, remove_pis=True,
)


class _Fault(Exception):
    """A call-level error answered as a SOAP Fault (HTTP 500)."""

    def __init__(self, message: str, *, client: bool = False, stat: str = "4xx") -> None:
        super().__init__(message)
        self.message = message
        self.client = client
        self.stat = stat


class _Invalid(Exception):
    """An invoice (or contact) refused by a business rule: its ``Message``."""


# ------------------------------------------------------------------------------------------- helpers


def _now() -> float:
    return get_clock().now()


def _now_dt() -> datetime:
    return datetime.fromtimestamp(_now(), tz=UTC)


def _stamp(moment: datetime | None = None) -> str:
    return (moment or _now_dt()).replace(tzinfo=None, microsecond=0).isoformat()


def _q(tag: str, ns: str = NS) -> str:
    return f"{{{ns}}}{tag}"


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _ns(el: etree._Element) -> str | None:
    return etree.QName(el).namespace


def _sub(parent: etree._Element, tag: str, text: Any = None, **attrib: str) -> etree._Element:
    """Append ``<tag>`` (the parent's namespace) with ``text`` (Decimal as plain digits, bool lowercase)."""
    ns = _ns(parent)
    el = etree.SubElement(parent, f"{{{ns}}}{tag}" if ns else tag, attrib)
    if text is not None:
        if isinstance(text, bool):
            el.text = "true" if text else "false"
        elif isinstance(text, Decimal):
            el.text = format(text, "f")
        elif isinstance(text, date | datetime):
            el.text = text.isoformat()
        else:
            el.text = str(text)
    return el


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return (el.text or "").strip()


def _child(el: etree._Element, name: str) -> etree._Element | None:
    for child in el:
        if isinstance(child.tag, str) and _local(child) == name:
            return child
    return None


def _value(el: etree._Element, name: str) -> str | None:
    """Text of child ``name`` (stripped), ``None`` when absent or empty."""
    value = _text(_child(el, name))
    return value or None


def _is_guid(value: str | None) -> bool:
    if not value:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _decimal_lexical(text: str) -> Decimal | None:
    """``xs:decimal`` lexical form (sign, digits, one dot; no exponent, no comma), else ``None``."""
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already guards
        return None


def _amount_ok(value: Decimal) -> bool:
    return round_money(value) == value and abs(value) < AMOUNT_LIMIT


def _name_key(name: str) -> str:
    """Name as UpdateContact compares it: ``, . " -`` and spaces stripped, case-insensitive (§3.5)."""
    return re.sub(r"[,.\"\-\s]", "", name).casefold()


def _emails(value: str | None) -> list[str]:
    return [part for part in re.split(r"[;,\s]+", value or "") if part]


# --------------------------------------------------------------------------------- document structure

# A spec maps an element name to (type, required, repeatable). Types: "string", "decimal", "date",
# "boolean", "int", "enum:<name>", or a nested spec (dict).
_Spec = dict[str, tuple[Any, bool, bool]]

_SALES_CONTACT: _Spec = {
    name: ("string", False, False)
    for name in ("ContactCode", "FullName", "FirstName", "MiddleName", "LastName", "Gender", "CountryCode",
                 "City", "Zipcode", "AddressLine_1", "AddressLine_2", "EmailAddress", "Website", "CoCNumber",
                 "VATNumber", "BankAccount", "PhoneHome", "PhoneWork", "MobileHome", "MobileWork")
} | {"ContactType": ("enum:contact", False, False)}
_CONTACT_PERSON: _Spec = {n: ("string", False, False) for n in ("FullName", "FirstName", "MiddleName", "LastName")}
_PRODUCT: _Spec = {
    "Description": ("string", False, False), "Reference": ("string", False, False),
    "Category": ("string", False, False), "SalesPrice": ("decimal", False, False),
    "VATPercentage": ("decimal", False, False), "VATIncluded": ("boolean", False, False),
    "VATType": ("int", False, False), "VATDescription": ("string", False, False),
    "GLAccountCode": ("string", False, False), "Remarks": ("string", False, False),
}
_SALES_LINE: _Spec = {
    "Description": ("string", False, False), "Remarks": ("string", False, False),
    "ProductQuantity": ("decimal", False, False), "LineAmount": ("decimal", False, False),
    "LineVATAmount": ("decimal", False, False), "Product": (_PRODUCT, True, False),
    "AccrualDate": ("date", False, False), "AccrualPeriods": ("int", False, False),
}
_SALES_INVOICE: _Spec = {
    "Reference": ("string", False, False), "Subject": ("string", False, False),
    "PaymentMethod": ("enum:payment", False, False), "PaymentID": ("string", False, False),
    "Process": ("boolean", False, False), "EmailToCustomer": ("boolean", False, False),
    "SentToPeppol": ("boolean", False, False), "Layout": ("string", False, False),
    "Notes": ("string", False, False), "PriceList": ("string", False, False), "Date": ("date", False, False),
    "DueDate": ("date", False, False), "Currency": ("string", False, False),
    "ProjectID": ("string", False, False), "ProjectCode": ("string", False, False),
    "Remarks": ("string", False, False), "Contact": (_SALES_CONTACT, True, False),
    "ContactPerson": (_CONTACT_PERSON, False, False),
    "InvoiceLines": ({"InvoiceLine": (_SALES_LINE, True, True)}, True, False),
}
_PURCHASE_CONTACT: _Spec = {
    name: ("string", False, False)
    for name in ("ContactCode", "FullName", "FirstName", "MiddleName", "LastName", "AddressLine_1",
                 "AddressLine_2", "Zipcode", "City", "CountryCode", "VATNumber", "CoCNumber", "BankAccount",
                 "EmailAddress", "Website")
} | {"ContactType": ("enum:contact", False, False)}
_PURCHASE_LINE: _Spec = {
    "Description": ("string", False, False), "LineAmount": ("decimal", True, False),
    "LineVATAmount": ("decimal", False, False), "LineVATType": ("int", False, False),
    "LineVATPercentage": ("decimal", False, False), "GLAccountCode": ("string", False, False),
    "VATDeductibilityPercentage": ("decimal", False, False),
}
_PURCHASE_INVOICE: _Spec = {
    "Process": ("boolean", False, False), "Reference": ("string", False, False),
    "Date": ("date", False, False), "DueDate": ("date", False, False),
    "InvoiceAmount": ("decimal", True, False), "InvoiceVATAmount": ("decimal", False, False),
    "Currency": ("string", False, False), "PaymentMethod": ("enum:payment", False, False),
    "Remarks": ("string", False, False), "DocumentFileName": ("string", False, False),
    "DocumentBase64": ("string", False, False), "Contact": (_PURCHASE_CONTACT, True, False),
    "InvoiceLines": ({"InvoiceLine": (_PURCHASE_LINE, True, True)}, True, False),
}
_JOURNAL_ENTRY: _Spec = {
    "ContactName": ("string", False, False), "ContactCode": ("string", False, False),
    "EntryDate": ("date", False, False), "GLAccount": ("string", False, False),
    "Amount": ("decimal", True, False), "Description": ("string", False, False),
    "Reference": ("string", False, False),  # sandbox extension: the sales invoice an entry settles
}
_JOURNAL: _Spec = {
    "AdministrationID": ("string", False, False), "AdministrationCoCNumber": ("string", False, False),
    "DocumentSubject": ("string", False, False), "JournalType": ("string", False, False),
    "ProjectID": ("string", False, False), "ProjectCode": ("string", False, False),
    "JournalEntry": (_JOURNAL_ENTRY, True, True),
}
_CONTACT_DOC: _Spec = {
    name: ("string", False, False)
    for name in ("ID", "Code", "FullName", "FirstName", "MiddleName", "LastName", "AddressLine_1",
                 "AddressLine_2", "PostCode", "City", "Country", "MailAddressLine_1", "MailPostCode", "MailCity",
                 "MailCountry", "Email", "Phone", "Website", "VATNumber", "CoCNumber", "BankAccount")
} | {"Type": ("int", False, False), "Active": ("boolean", False, False)}


def _check_structure(el: etree._Element, spec: _Spec, ns: str, path: str, errors: list[str]) -> None:
    """XSD-like check of ``el``'s children against ``spec`` (names, namespace, counts, lexical types)."""
    seen: Counter[str] = Counter()
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = _local(child)
        where = f"{path}/{name}"
        if _ns(child) != ns or name not in spec:
            errors.append(f"{where}: element not expected here (namespace {_ns(child) or 'none'})")
            continue
        seen[name] += 1
        type_, _required, many = spec[name]
        if seen[name] > 1 and not many:
            errors.append(f"{where}: element may appear only once")
            continue
        if isinstance(type_, dict):
            _check_structure(child, type_, ns, where, errors)
            continue
        if len(child):
            errors.append(f"{where}: element has child elements, a {type_} was expected")
            continue
        text = (child.text or "").strip()
        if text == "" and type_ == "string":
            continue
        if text == "" and type_ != "string":
            if type_ in ("decimal", "int", "date", "boolean"):
                errors.append(f"{where}: '' is not a valid {type_}")
            continue
        if type_ == "decimal" and _decimal_lexical(text) is None:
            errors.append(f"{where}: '{text}' is not a valid decimal")
        elif type_ == "int" and not re.fullmatch(r"[+-]?\d+", text):
            errors.append(f"{where}: '{text}' is not a valid integer")
        elif type_ == "boolean" and text not in ("true", "false", "1", "0"):
            errors.append(f"{where}: '{text}' is not a valid boolean")
        elif type_ == "date":
            try:
                date.fromisoformat(text)
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                    raise ValueError(text)
            except ValueError:
                errors.append(f"{where}: '{text}' is not a valid date (YYYY-MM-DD)")
        elif type_ == "enum:payment" and text not in _PAYMENT_METHODS:
            errors.append(f"{where}: '{text}' is not a valid PaymentMethod")
        elif type_ == "enum:contact" and text not in _CONTACT_TYPES:
            errors.append(f"{where}: '{text}' is not a valid ContactType (Company, Person)")
    for name, (_type, required, _many) in spec.items():
        if required and not seen[name]:
            errors.append(f"{path}: required element {name} is missing")


def _bool(text: str | None, default: bool = False) -> bool:
    if text is None or text == "":
        return default
    return text in ("true", "1")


# ------------------------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class _Op:
    """One web-service operation: its exact parameter names and types, result type and counter."""

    name: str
    params: tuple[tuple[str, str], ...]  # (name, type): string / int / boolean / xml / strings
    result: str  # string / xml / glaccounts / transactions
    kind: str  # auth / read / write
    optional: frozenset[str] = frozenset()

    @property
    def session_param(self) -> str | None:
        return next((n for n, _ in self.params if n.lower() == "sessionid"), None)


def _op(name: str, params: str, result: str = "xml", kind: str = "read", optional: str = "") -> _Op:
    parsed = []
    for item in params.split():
        pname, _, ptype = item.partition(":")
        parsed.append((pname, ptype or "string"))
    return _Op(name, tuple(parsed), result, kind, frozenset(optional.split()))


_AUTH = _op("Authenticate", "accessKey", "string", "auth")
_ADMINS = _op("Administrations", "sessionID")
_SERVICES: dict[str, dict[str, _Op]] = {
    "Accounting": {o.name: o for o in (
        _AUTH, _ADMINS,
        _op("AdministrationID", "sessionID administrationName", "string"),
        _op("CheckOutstandingItem", "sessionID Reference"),
        _op("OutstandingDebtorItems", "sessionID administrationID includeBankTransactions:boolean sortOrder",
            optional="includeBankTransactions sortOrder"),
        _op("OutstandingCreditorItems", "sessionID administrationID includeBankTransactions:boolean sortOrder",
            optional="includeBankTransactions sortOrder"),
        _op("ProcessJournal", "sessionID administrationID xmlDoc:xml", kind="write"),
    )},
    "AccountingInfo": {o.name: o for o in (
        _AUTH, _ADMINS,
        _op("GetCurrentDomain", "sessionID"),
        _op("GetGLAccountScheme", "sessionID administrationID", "glaccounts"),
        _op("SearchInvoices", "sessionID administrationID invoiceType searchOption searchValues:strings"),
        _op("GetTransactionDetails", "sessionID administrationID GLAccountCode StartDate EndDate financialMode:int",
            "transactions"),
    )},
    "Sales": {o.name: o for o in (
        _AUTH, _ADMINS,
        _op("ProcessSalesInvoices", "sessionId administrationId xmlDoc:xml", kind="write"),
    )},
    "Purchase": {o.name: o for o in (
        _op("ProcessPurchaseInvoices", "sessionID administrationId xmlDoc:xml", kind="write"),
    )},
    "Contact": {o.name: o for o in (
        _op("SearchContacts",
            "sessionID domainID searchOption searchValue sortOrder modifiedAfter active pageNumber:int",
            optional="sortOrder modifiedAfter active"),
        _op("UpdateContact", "sessionID domainId xmlDoc:xml", kind="write"),
    )},
}
_SERVICE_NAMES = {name.lower(): name for name in _SERVICES}


# --------------------------------------------------------------------------------------------- state


@dataclass
class _Domain:
    id: str
    name: str
    url: str
    daily_limit: int
    active: bool = True
    contacts: list[dict[str, Any]] = field(default_factory=list)
    usage: Counter[int] = field(default_factory=Counter)  # UTC day -> calls


@dataclass
class _Admin:
    id: str
    domain: str
    name: str
    country: str
    vat_number: str | None
    currency: str
    booking_number_format: str
    active: bool = True
    closed_until: date | None = None
    gl_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    sequences: Counter[tuple[str, int]] = field(default_factory=Counter)  # (side, year) -> last number
    journals: list[dict[str, Any]] = field(default_factory=list)  # booked ProcessJournal documents
    exchange_rates: dict[str, list[tuple[date, Decimal]]] = field(default_factory=dict)  # currency -> (start, rate)


@dataclass
class _Key:
    key: str
    domain: str
    services: frozenset[str] | None


@dataclass
class _Session:
    domain: str
    key: str
    expires: float


@dataclass
class _Injected:
    status: int
    remaining: int
    operation: str | None
    after: bool
    fault: str | None


@dataclass(frozen=True)
class _Side:
    """What differs between sales and purchase imports (§3.6, §3.7)."""

    name: str  # sales / purchase
    root: str
    ns: str
    item: str
    spec: _Spec
    response_root: str
    response_ns: str


_SALES = _Side("sales", "SalesInvoices", NS_SALES, "SalesInvoice", _SALES_INVOICE, "SalesInvoicesImportResponse",
               NS_SALES_RESPONSE)
_PURCHASE = _Side("purchase", "PurchaseInvoices", NS_PURCHASE, "PurchaseInvoice", _PURCHASE_INVOICE,
                  "PurchaseInvoicesImportResponse", NS_PURCHASE_RESPONSE)


# ------------------------------------------------------------------------------------------- sandbox


class YukiSandbox:
    """The simulated Yuki web services: state, admin set-up methods and the WSGI app (``self``).

    Options: ``daily_limit`` (calls per domain per UTC day, default 1,000, §3.3; a domain may override
    it), ``session_ttl`` (seconds, default 24 h, §3.2), ``max_failed`` (failed invoices after which an
    import stops, default :data:`MAX_FAILED`), ``page_size`` (``SearchContacts``, default 100).
    """

    def __init__(
        self,
        *,
        daily_limit: int = DAILY_LIMIT,
        session_ttl: int = SESSION_TTL,
        max_failed: int = MAX_FAILED,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.daily_limit = daily_limit
        self.session_ttl = session_ttl
        self.max_failed = max_failed
        self.page_size = page_size
        self._domains: dict[str, _Domain] = {}
        self._admins: dict[str, _Admin] = {}
        self._keys: dict[str, _Key] = {}
        self._sessions: dict[str, _Session] = {}
        self._faults: list[_Injected] = []
        self._stats: dict[str, Counter[str]] = {}
        self._seq = 0  # creation order of contacts (ties in time)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------ admin set-up

    def add_domain(
        self, name: str = "Demo domain", *, domain_id: str | None = None, daily_limit: int | None = None,
        active: bool = True,
    ) -> str:
        """Create a domain (the customer's Yuki environment: contacts and the call budget live here,
        §3.2 / §3.3). ``daily_limit`` overrides the sandbox default (5,000 / 10,000 for paid plans).
        Returns its id (GUID)."""
        with self._lock:
            did = (domain_id or str(uuid.uuid4())).lower()
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "domain"
            self._domains[did] = _Domain(did, name, f"https://{slug}.yukiworks.nl",
                                         daily_limit if daily_limit is not None else self.daily_limit, active)
            return did

    def add_administration(
        self,
        domain: str,
        name: str,
        *,
        administration_id: str | None = None,
        country: str = "NL",
        vat_number: str | None = None,
        currency: str = "EUR",
        booking_number_format: str = "{year}0000{seq}",
        active: bool = True,
        closed_until: date | None = None,
    ) -> str:
        """Create an administration (bookkeeping of one company) in ``domain``. ``booking_number_format``
        is a ``str.format`` template with ``year`` (fiscal = calendar year of the invoice date) and
        ``seq`` (per administration, side and year, from 1): the default is Yuki's
        "fiscal year + 0000 + number" (seed 004); e.g. ``"F{year}-{seq:04d}"`` gives numbers with
        letters. Invoices dated on or before ``closed_until`` are refused (closed period).
        Returns its id (GUID)."""
        with self._lock:
            if domain.lower() not in self._domains:
                raise KeyError(f"unknown domain {domain}")
            aid = (administration_id or str(uuid.uuid4())).lower()
            self._admins[aid] = _Admin(aid, domain.lower(), name, country, vat_number, currency,
                                       booking_number_format, active, closed_until)
            return aid

    def add_exchange_rate(self, administration_id: str, currency: str, rate: Decimal | str, start: date = date(2000, 1, 1)) -> None:
        """From ``start`` on, 1 ``currency`` = ``rate`` units of the administration currency (the rate
        Yuki applies to an invoice in ``currency`` dated on or after ``start``)."""
        with self._lock:
            self._admins[administration_id.lower()].exchange_rates.setdefault(currency, []).append((start, Decimal(str(rate))))

    def set_booking_number_format(self, administration_id: str, booking_number_format: str) -> None:
        """Change how the administration numbers new bookings, e.g. ``"F{year}-{seq:04d}"`` for an admin
        who changed the prefix (seed 004: the host can't store numbers with letters or separators)."""
        with self._lock:
            self._admins[administration_id.lower()].booking_number_format = booking_number_format

    def add_access_key(self, key: str, domain: str, *, services: Iterable[str] | None = None) -> None:
        """Issue a web-service access key for ``domain`` (§3.2). ``services`` restricts it (e.g.
        ``{"Sales", "Contact"}``); calling another service gets the "No rights" fault."""
        with self._lock:
            if domain.lower() not in self._domains:
                raise KeyError(f"unknown domain {domain}")
            self._keys[key] = _Key(key, domain.lower(), frozenset(services) if services is not None else None)

    def add_gl_account(
        self,
        administration: str,
        code: str,
        description: str = "",
        type: str = "W",
        *,
        subtype: str = "",
        enabled: bool = True,
        vat_applicable: bool = True,
    ) -> None:
        """Add a GL account to the scheme (§3.4): ``type`` ``B`` balance sheet / ``W`` profit and loss;
        a disabled account (``enabled=False``) cannot be booked on."""
        if type not in ("B", "W"):
            raise ValueError("type is B (balance sheet) or W (profit and loss)")
        with self._lock:
            self._admin(administration).gl_accounts[str(code)] = {
                "code": str(code), "type": type, "subtype": subtype, "isEnabled": enabled,
                "descripton": description, "isVATApplicable": vat_applicable,
            }

    def add_contact(
        self, domain: str, full_name: str = "", *, code: str | None = None, type: int = 2,
        email: str | None = None, active: bool = True, **fields: Any,
    ) -> str:
        """Create a contact directly, as a user would in Yuki (no matching: duplicates allowed).
        ``type`` 2 company / 0 person (§3.5); ``fields`` use UpdateContact's names (``City``, …).
        Returns its ID (GUID)."""
        with self._lock:
            return self._new_contact(self._domain(domain), {
                "Code": code, "Type": type, "FullName": full_name, "Email": email, "Active": active, **fields,
            })["ID"]

    # -------------------------------------------------------------------------------- faults, counters

    def fail_next(
        self, status: int = 503, count: int = 1, *, operation: str | None = None, after: bool = False,
        fault: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls (of ``operation``, or any) with HTTP ``status`` and a plain
        HTML body (a proxy / IIS failure, not a SOAP Fault), or, with ``fault``, with a SOAP Fault of
        that text. ``after=True`` processes the call first and then replaces its answer (a write that
        happened but whose answer was lost). Injected failures pass authentication and count against
        the budget."""
        with self._lock:
            self._faults.append(_Injected(status, count, operation, after, fault))

    def calls(self, operation: str | None = None) -> Counter[str]:
        """Counters ``reads``, ``writes``, ``authenticate`` (answered calls), ``4xx`` (SOAP Faults and
        failed invoices / contacts), ``5xx`` (injected HTTP failures) and ``429`` (daily-limit faults),
        for one ``operation`` or summed over all."""
        with self._lock:
            if operation is not None:
                return Counter(self._stats.get(operation, Counter()))
            total: Counter[str] = Counter()
            for counter in self._stats.values():
                total.update(counter)
            return total

    def reset_calls(self) -> None:
        """Zero the counters (not the budgets)."""
        with self._lock:
            self._stats.clear()

    def budget_used(self, domain: str) -> int:
        """Calls counted today (UTC) against ``domain``'s budget."""
        with self._lock:
            return self._domain(domain).usage[int(_now() // 86400)]

    def expire_sessions(self) -> None:
        """Make every session expired now (the next call with one gets :data:`FAULT_SESSION`)."""
        with self._lock:
            for session in self._sessions.values():
                session.expires = min(session.expires, _now())

    def bookkeeper_delete(self, administration: str, document_id: str) -> None:
        """A bookkeeper deletes an invoice in Yuki."""
        with self._lock:
            admin = self._admin(administration)
            admin.invoices[:] = [i for i in admin.invoices if i["DocumentID"] != document_id.lower()]

    def bookkeeper_edit(self, administration: str, document_id: str, delta: Decimal | str) -> None:
        """A bookkeeper changes the first line of an invoice by ``delta`` (excl. VAT, Yuki's sign); the
        totals follow."""
        delta = Decimal(str(delta))
        with self._lock:
            inv = next(i for i in self._admin(administration).invoices if i["DocumentID"] == document_id.lower())
            inv["Lines"][0]["LineAmount"] = Decimal(str(inv["Lines"][0]["LineAmount"])) + delta
            for key in ("TotalAmountExclVAT", "TotalAmount", "OpenAmount"):
                if inv.get(key) is not None:
                    inv[key] = Decimal(str(inv[key])) + delta

    def mark_paid(
        self,
        reference: str | None = None,
        *,
        administration: str | None = None,
        amount: Decimal | None = None,
        side: str | None = None,
        contact_code: str | None = None,
        document_id: str | None = None,
        paid_on: date | None = None,
    ) -> Decimal:
        """Reconcile (part of) the outstanding item of one processed invoice, sales or purchase (§3.8),
        as a bookkeeper matching a bank line would.

        The invoice is picked by ``document_id`` (the ``entry_id`` the adapter returned; a GUID given as
        ``reference`` is accepted as one too), or by ``reference`` narrowed by ``side`` (``"sales"`` /
        ``"purchase"``, case-insensitive), ``contact_code`` (purchase references collide across
        suppliers) and ``administration`` (default: every administration). ``amount`` is in Yuki's sign
        (a credit note's is negative); ``None`` pays what is open. A fully paid item leaves
        ``CheckOutstandingItem`` and the ``Outstanding…Items`` lists; paying never re-opens anything.
        ``paid_on`` (default: today, UTC) is kept as the invoice's ``LastPaymentDate`` for the Python
        readers only: no Yuki operation returns it. Returns the amount still open (Yuki's sign). ``KeyError`` when no processed invoice matches,
        ``ValueError`` when several do (say which with ``side`` / ``contact_code`` / ``document_id``) or
        when ``amount`` exceeds what is open or has the other sign."""
        if reference is None and document_id is None:
            raise ValueError("give a reference or a document_id")
        wanted_type = None if side is None else {"sales": "Sales", "purchase": "Purchase"}[side.lower()]
        with self._lock:
            matches = [
                inv
                for admin in self._admins.values()
                if administration is None or admin.id == administration.lower()
                for inv in admin.invoices
                if inv["Processed"]
                and (document_id is None or inv["DocumentID"] == document_id.lower())
                and (reference is None or inv["Reference"] == reference or inv["DocumentID"] == reference.lower())
                and (wanted_type is None or inv["Type"] == wanted_type)
                and (contact_code is None or inv["ContactCode"] == contact_code)
            ]
            if not matches:
                raise KeyError(reference or document_id)
            if len(matches) > 1:
                raise ValueError(f"{len(matches)} invoices match {reference!r}: give side, contact_code or document_id")
            inv = matches[0]
            open_amount: Decimal = inv["OpenAmount"]
            paid = open_amount if amount is None else Decimal(amount)
            if paid != 0 and (abs(paid) > abs(open_amount) or (paid > 0) != (open_amount > 0)):
                raise ValueError(f"cannot pay {paid} of an item with {open_amount} open (Yuki's sign)")
            inv["OpenAmount"] = open_amount - paid
            inv["LastPaymentDate"] = paid_on or _now_dt().date()
            return inv["OpenAmount"]

    def undo_payments(self, reference: str | None = None, *, document_id: str | None = None,
                      administration: str | None = None) -> None:
        """Undo every payment of one processed invoice (the reconciliation is removed in Yuki): its
        ``OpenAmount`` is its ``TotalAmount`` again and ``LastPaymentDate`` is cleared; it is listed in
        ``CheckOutstandingItem`` / ``Outstanding…Items`` again. Picked by ``document_id`` or ``reference``
        (as :meth:`mark_paid`, in ``administration`` or any). ``KeyError`` when none matches,
        ``ValueError`` when several do."""
        if reference is None and document_id is None:
            raise ValueError("give a reference or a document_id")
        with self._lock:
            matches = [
                inv
                for admin in self._admins.values()
                if administration is None or admin.id == administration.lower()
                for inv in admin.invoices
                if inv["Processed"]
                and (document_id is None or inv["DocumentID"] == document_id.lower())
                and (reference is None or inv["Reference"] == reference or inv["DocumentID"] == reference.lower())
            ]
            if not matches:
                raise KeyError(reference or document_id)
            if len(matches) > 1:
                raise ValueError(f"{len(matches)} invoices match {reference!r}: give document_id")
            matches[0].update(OpenAmount=matches[0]["TotalAmount"], LastPaymentDate=None)

    # ------------------------------------------------------------------------------- state accessors

    def journals(self, administration: str) -> list[dict[str, Any]]:
        """General journals booked with ``ProcessJournal`` in ``administration`` (copies, in order):
        ``DocumentID``, ``Subject``, ``Entries`` (``ContactCode``, ``EntryDate``, ``GLAccount``,
        ``Amount``, ``Description``, ``Reference``) and ``Settled`` (``[(invoice DocumentID, amount paid
        off, Yuki's sign)]``)."""
        with self._lock:
            return [{**j, "Entries": [dict(e) for e in j["Entries"]], "Settled": list(j["Settled"])}
                    for j in self._admin(administration).journals]

    def invoices(self, administration: str) -> list[dict[str, Any]]:
        """Invoices of ``administration`` (copies, import order), sales and purchase (``Type``), with
        ``Lines``; amounts in Yuki's sign (credit note negative)."""
        with self._lock:
            out = []
            for inv in self._admin(administration).invoices:
                copy = dict(inv)
                copy["Lines"] = [dict(line) for line in inv["Lines"]]
                out.append(copy)
            return out

    def contacts(self, domain: str) -> list[dict[str, Any]]:
        """Contacts of ``domain`` (copies, creation order)."""
        with self._lock:
            return [dict(c) for c in self._domain(domain).contacts]

    def vat_types(self) -> dict[str, tuple[str, Decimal]]:
        """The VAT-type table (:data:`VAT_TYPES`)."""
        return dict(VAT_TYPES)

    # ------------------------------------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Route and answer one request (thread-safe: requests are served one at a time)."""
        match = re.fullmatch(r"/ws/([A-Za-z]+)\.asmx/?", request.path)
        service = _SERVICE_NAMES.get(match.group(1).lower()) if match else None
        if service is None:
            return Response("<html><body><h1>404 - File or directory not found.</h1></body></html>", 404,
                            content_type="text/html; charset=utf-8")
        if request.method == "GET":
            if any(k.lower() == "wsdl" for k in request.args):
                return Response(self.wsdl(service, request.host_url.rstrip("/")), 200,
                                content_type="text/xml; charset=utf-8")
            items = "".join(f"<li>{escape(name)}</li>" for name in _SERVICES[service])
            return Response(f"<html><body><h1>{service}</h1><ul>{items}</ul></body></html>", 200,
                            content_type="text/html; charset=utf-8")
        if request.method != "POST":
            return Response("Method not allowed", 405, content_type="text/plain")
        mimetype = request.mimetype
        if mimetype == "text/xml":
            version = "1.1"
            action = (request.headers.get("SOAPAction") or "").strip().strip('"')
        elif mimetype == "application/soap+xml":
            version = "1.2"
            action = (request.mimetype_params.get("action") or "").strip().strip('"')
        else:
            return Response("Unsupported Media Type", 415, content_type="text/plain")
        with self._lock:
            return self._soap(service, version, action, request.get_data())

    # ------------------------------------------------------------------------------------------- SOAP

    def _soap(self, service: str, version: str, action: str, body: bytes) -> Response:
        env_ns = SOAP11 if version == "1.1" else SOAP12
        op_name = "?"
        try:
            try:
                root = etree.fromstring(body, _SAFE_PARSER)
            except etree.XMLSyntaxError as exc:
                raise _Fault(f"Server was unable to read request. ---> There is an error in XML document: "
                             f"{(str(exc).splitlines() or [''])[0][:120]}", client=True) from None
            if root.getroottree().docinfo.doctype:
                raise _Fault("Server was unable to read request. ---> For security reasons DTD is prohibited in "
                             "this XML document.", client=True)
            if root.tag != _q("Envelope", env_ns):
                raise _Fault("Possible SOAP version mismatch: Envelope namespace was unexpected", client=True)
            soap_body = next((c for c in root if isinstance(c.tag, str) and c.tag == _q("Body", env_ns)), None)
            call = next((c for c in soap_body if isinstance(c.tag, str)), None) if soap_body is not None else None
            if call is None:
                raise _Fault("Server did not recognize the request: the SOAP Body is empty", client=True)
            ops = _SERVICES[service]
            if action:
                op_name = action[len(NS):] if action.startswith(NS) else action
                if not action.startswith(NS) or op_name not in ops:
                    raise _Fault(f"Server did not recognize the value of HTTP Header SOAPAction: {action}.",
                                 client=True)
                if call.tag != _q(op_name):
                    raise _Fault(f"The request element {_local(call)} does not match the SOAPAction {op_name}",
                                 client=True)
            elif version == "1.1":
                raise _Fault("Server did not recognize the value of HTTP Header SOAPAction: .", client=True)
            else:
                op_name = _local(call)
                if _ns(call) != NS or op_name not in ops:
                    raise _Fault(f"Server did not recognize the request element {op_name}", client=True)
            op = ops[op_name]
            args = self._arguments(op, call)
            result, stat_extra = self._invoke(service, op, args)
            self._stat(op.name, {"auth": "authenticate", "read": "reads", "write": "writes"}[op.kind])
            if stat_extra:
                self._stats.setdefault(op.name, Counter())["4xx"] += stat_extra
            return self._envelope(version, op, result)
        except _Fault as fault:
            self._stat(op_name, fault.stat)
            return self._fault(version, fault)
        except _HttpFailure as failure:
            self._stat(op_name, "5xx")
            return Response(f"<html><body><h1>{failure.status} - Service unavailable</h1></body></html>",
                            failure.status, content_type="text/html; charset=utf-8")

    def _arguments(self, op: _Op, call: etree._Element) -> dict[str, Any]:
        """The call's parameters by exact name (§3.1 casing); a Fault for missing / unexpected ones."""
        expected = dict(op.params)
        args: dict[str, Any] = {}
        for child in call:
            if not isinstance(child.tag, str):
                continue
            name = _local(child)
            if _ns(child) != NS or name not in expected:
                hint = next((p for p in expected if p.lower() == name.lower()), None)
                tip = f"; parameter names are case-sensitive, expected '{hint}'" if hint else ""
                raise _Fault(f"Unexpected parameter '{name}' for {op.name}{tip}", client=True)
            ptype = expected[name]
            if ptype == "xml":
                elements = [c for c in child if isinstance(c.tag, str)]
                args[name] = elements[0] if elements else (child.text or "")
            elif ptype == "strings":
                args[name] = [(c.text or "") for c in child if isinstance(c.tag, str)]
            else:
                args[name] = (child.text or "").strip()
        for name, ptype in op.params:
            if name not in args and name not in op.optional:
                raise _Fault(f"Missing parameter '{name}' for {op.name} (parameter names are case-sensitive)",
                             client=True)
            if ptype == "int" and name in args and not re.fullmatch(r"-?\d+", args[name] or ""):
                raise _Fault(f"Server was unable to read request. ---> Input string '{args[name]}' was not in a "
                             f"correct format ({name})", client=True)
            if ptype == "boolean" and name in args and args[name] not in ("", "true", "false", "1", "0"):
                raise _Fault(f"Server was unable to read request. ---> '{args[name]}' is not a valid boolean "
                             f"({name})", client=True)
        return args

    def _invoke(self, service: str, op: _Op, args: dict[str, Any]) -> tuple[Any, int]:
        """Authenticate / check the session, count the budget, apply injected failures, run the handler."""
        now = _now()
        day = int(now // 86400)
        if op.kind == "auth":
            key = self._keys.get(args.get("accessKey", ""))
            if key is None:
                raise _Fault(FAULT_ACCESS_KEY)
            domain = self._domains[key.domain]
            session: _Session | None = None
        else:
            session = self._sessions.get((args.get(op.session_param or "", "") or "").lower())
            if session is None or session.expires <= now:
                raise _Fault(FAULT_SESSION)
            domain = self._domains[session.domain]
            key = self._keys.get(session.key)
        if domain.usage[day] >= domain.daily_limit:
            raise _Fault(f"{FAULT_DAILY_LIMIT} ({domain.daily_limit} calls per day); try again after midnight UTC",
                         stat="429")
        domain.usage[day] += 1
        if not domain.active:
            raise _Fault("Domain is inactive")
        if key is None:
            raise _Fault(FAULT_SESSION)
        if key.services is not None and service not in key.services:
            raise _Fault(f"No rights: this access key may not use the {service} service")
        injected = self._take_injected(op.name)
        if injected is not None and not injected.after:
            self._raise_injected(injected)
        if op.kind == "auth":
            result, failed = self._authenticate(key), 0
        else:
            result, failed = getattr(self, f"_op_{op.name}")(domain, session, args)
        if injected is not None:
            self._raise_injected(injected)
        return result, failed

    def _take_injected(self, operation: str) -> _Injected | None:
        for fault in self._faults:
            if fault.operation in (None, operation):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _raise_injected(injected: _Injected) -> None:
        if injected.fault is not None:
            raise _Fault(injected.fault)
        raise _HttpFailure(injected.status)

    def _authenticate(self, key: _Key) -> str:
        session_id = str(uuid.uuid4())
        self._sessions[session_id] = _Session(key.domain, key.key, _now() + self.session_ttl)
        return session_id

    def _envelope(self, version: str, op: _Op, result: Any) -> Response:
        env_ns = SOAP11 if version == "1.1" else SOAP12
        # tns gets a prefix so that un-namespaced result fragments stay un-namespaced (lxml writes no xmlns="")
        envelope = etree.Element(_q("Envelope", env_ns), nsmap={"soap": env_ns, "yuki": NS})
        body = etree.SubElement(envelope, _q("Body", env_ns))
        response = etree.SubElement(body, _q(f"{op.name}Response"))
        holder = etree.SubElement(response, _q(f"{op.name}Result"))
        if op.result == "string":
            holder.text = str(result)
        elif op.result == "glaccounts":
            for row in result:
                item = etree.SubElement(holder, _q("GlAccount"))
                for name in ("code", "type", "subtype", "isEnabled", "descripton", "isVATApplicable"):
                    _sub(item, name, row[name])
        elif op.result == "transactions":
            for row in result:
                item = etree.SubElement(holder, _q("TransactionInfo"))
                for name in _TRANSACTION_FIELDS:
                    _sub(item, name, row.get(name))
        else:
            holder.append(result)
        content_type = "text/xml" if version == "1.1" else "application/soap+xml"
        return Response(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), 200,
                        content_type=f"{content_type}; charset=utf-8")

    @staticmethod
    def _fault(version: str, fault: _Fault) -> Response:
        if version == "1.1":
            text = (
                f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><soap:Fault>'
                f"<faultcode>soap:{'Client' if fault.client else 'Server'}</faultcode>"
                f"<faultstring>{escape(fault.message, quote=False)}</faultstring><detail /></soap:Fault></soap:Body>"
                f"</soap:Envelope>"
            )
            return Response(text, 500, content_type="text/xml; charset=utf-8")
        text = (
            f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP12}"><soap:Body><soap:Fault>'
            f"<soap:Code><soap:Value>soap:{'Sender' if fault.client else 'Receiver'}</soap:Value></soap:Code>"
            f'<soap:Reason><soap:Text xml:lang="en">{escape(fault.message, quote=False)}</soap:Text></soap:Reason>'
            f"<soap:Detail /></soap:Fault></soap:Body></soap:Envelope>"
        )
        return Response(text, 500, content_type="application/soap+xml; charset=utf-8")

    # ----------------------------------------------------------------------------------- read handlers

    def _op_Administrations(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        root = etree.Element("Administrations")
        for admin in self._admins.values():
            if admin.domain != domain.id:
                continue
            el = _sub(root, "Administration", ID=admin.id)
            _sub(el, "Name", admin.name)
            _sub(el, "DomainID", admin.domain)
            _sub(el, "Country", admin.country)
            _sub(el, "VATNumber", admin.vat_number or "")
            _sub(el, "Active", admin.active)
        return root, 0

    def _op_AdministrationID(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        name = args["administrationName"]
        for admin in self._admins.values():
            if admin.domain == domain.id and admin.name == name:
                return admin.id, 0
        raise _Fault(f"Administration '{name}' not found")

    def _op_GetCurrentDomain(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        root = etree.Element("Domain", ID=domain.id)
        _sub(root, "Name", domain.name)
        _sub(root, "URL", domain.url)
        return root, 0

    def _op_GetGLAccountScheme(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        admin = self._admin_for(domain, args["administrationID"])
        return [dict(row) for _, row in sorted(admin.gl_accounts.items())], 0

    def _op_CheckOutstandingItem(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        root = etree.Element("OutstandingItems")
        reference = args["Reference"]
        for admin in self._admins.values():
            if admin.domain != domain.id:
                continue
            for inv in admin.invoices:
                if inv["Reference"] == reference and inv["Processed"] and inv["OpenAmount"] != 0:
                    self._item(root, admin, inv)
        return root, 0

    def _op_OutstandingDebtorItems(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        return self._outstanding(domain, args, "Sales", "OutstandingDebtorItems"), 0

    def _op_OutstandingCreditorItems(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        return self._outstanding(domain, args, "Purchase", "OutstandingCreditorItems"), 0

    def _outstanding(self, domain: _Domain, args: dict[str, Any], type_: str, root_name: str) -> etree._Element:
        admin = self._admin_for(domain, args["administrationID"])
        order = args.get("sortOrder") or "DateAsc"
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "ContactAsc": lambda i: i["ContactName"].casefold(), "ContactDesc": lambda i: i["ContactName"].casefold(),
            "AmountAsc": lambda i: i["OpenAmount"], "AmountDesc": lambda i: i["OpenAmount"],
            "DateAsc": lambda i: i["Date"], "DateDesc": lambda i: i["Date"],
        }
        if order not in keys:
            raise _Fault(f"Invalid sortOrder '{order}' (ContactAsc/Desc, AmountAsc/Desc, DateAsc/Desc)", client=True)
        rows = [i for i in admin.invoices if i["Type"] == type_ and i["Processed"] and i["OpenAmount"] != 0]
        rows.sort(key=keys[order], reverse=order.endswith("Desc"))
        root = etree.Element(root_name)
        for inv in rows:
            self._item(root, admin, inv)
        return root

    def _item(self, root: etree._Element, admin: _Admin, inv: dict[str, Any]) -> None:
        item = _sub(root, "Item", ID=inv["DocumentID"])
        for name, value in (
            ("Date", inv["Date"]), ("Description", inv["Subject"] or inv["Reference"]),
            ("Contact", inv["ContactName"]), ("ContactID", inv["ContactID"]), ("ContactCode", inv["ContactCode"] or ""),
            ("OpenAmount", inv["OpenAmount"]), ("OriginalAmount", inv["TotalAmount"]),
            ("Type", "Verkoopfactuur" if inv["Type"] == "Sales" else "Inkoopfactuur"),
            ("Reference", inv["Reference"]), ("DueDate", inv["DueDate"]), ("DocumentID", inv["DocumentID"]),
            ("PaymentMethod", inv["PaymentMethod"] or "Unspecified"), ("AdministrationID", admin.id),
        ):
            _sub(item, name, value)

    def _op_ProcessJournal(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        """``ProcessJournal`` (module docstring, "General journals"): check the whole journal, then book it
        and settle the open sales items its debtor entries name. One failed document counts as a 4xx."""
        admin = self._admin_for(domain, args["administrationID"])
        root = etree.Element("JournalImportResponse")
        _sub(root, "TimeStamp", _stamp())
        _sub(root, "AdministrationId", admin.id)
        doc = args["xmlDoc"]
        errors: list[str] = []
        if not isinstance(doc, etree._Element):
            errors.append("xmlDoc must contain the journal as XML elements, not as text")
        elif doc.tag != _q("Journal", NS_JOURNAL):
            errors.append(f"root element {{{_ns(doc)}}}{_local(doc)} not expected, Journal in {NS_JOURNAL} is")
        else:
            _check_structure(doc, _JOURNAL, NS_JOURNAL, "Journal", errors)
        try:
            if errors:
                raise _Invalid("XML validation failed: " + "; ".join(errors[:10]))
            assert isinstance(doc, etree._Element)
            record = self._book_journal(domain, admin, doc)
        except _Invalid as invalid:
            for name, value in (("Succeeded", False), ("TotalEntries", 0), ("DocumentID", ""), ("Message", str(invalid))):
                _sub(root, name, value)
            return root, 1
        for name, value in (("Succeeded", True), ("TotalEntries", len(record["Entries"])),
                            ("DocumentID", record["DocumentID"]), ("Message", "")):
            _sub(root, name, value)
        return root, 0

    def _book_journal(self, domain: _Domain, admin: _Admin, doc: etree._Element) -> dict[str, Any]:
        given = (_value(doc, "AdministrationID") or "").strip().lower()
        if given and given != admin.id:
            raise _Invalid("AdministrationID does not match the administration of the call")
        journal_type = _value(doc, "JournalType") or "GeneralJournal"
        if journal_type != "GeneralJournal":
            raise _Invalid(f"JournalType '{journal_type}' is not supported (GeneralJournal)")
        entries_el = [c for c in doc if isinstance(c.tag, str) and _local(c) == "JournalEntry"]
        if len(entries_el) < 2:
            raise _Invalid("A journal needs at least two entries")
        entries, settle = [], []
        for n, el in enumerate(entries_el, 1):
            where = f"entry {n}"
            amount = Decimal(_value(el, "Amount") or "0")
            if not _amount_ok(amount):
                raise _Invalid(f"{where}: Amount {amount}: at most 10 integer digits and 2 decimals are allowed")
            day_text = _value(el, "EntryDate")
            if not day_text:
                raise _Invalid(f"{where}: EntryDate is required")
            day = date.fromisoformat(day_text)
            if admin.closed_until is not None and day <= admin.closed_until:
                raise _Invalid(f"{where}: Period closed: the period of {day.isoformat()} is closed in this administration")
            code = _value(el, "GLAccount") or ""
            gl = admin.gl_accounts.get(code)
            if gl is None:
                raise _Invalid(f"{where}: GL account '{code}' does not exist in this administration")
            if not gl["isEnabled"]:
                raise _Invalid(f"{where}: GL account '{code}' is blocked")
            contact_code, contact_name = _value(el, "ContactCode"), _value(el, "ContactName")
            contact = None
            if contact_code:
                same = [c for c in domain.contacts if c["Code"] == contact_code]
                if not same:
                    raise _Invalid(f"{where}: contact code '{contact_code}' is unknown")
                contact = max(same, key=lambda c: c["_seq"])
            elif contact_name:
                same = [c for c in domain.contacts if (c["FullName"] or "") == contact_name]
                if not same:
                    raise _Invalid(f"{where}: contact '{contact_name}' is unknown")
                contact = max(same, key=lambda c: c["_seq"])
            debtors = str(gl.get("subtype") or "").casefold() == "debtors"
            if debtors and contact is None:
                raise _Invalid(f"{where}: an entry on debtors account '{code}' needs a contact")
            reference = _value(el, "Reference")
            if debtors and reference:
                assert contact is not None
                item = next((i for i in admin.invoices if i["Type"] == "Sales" and i["Processed"]
                             and i["Reference"] == reference and i["ContactID"] == contact["ID"]), None)
                if item is None or item["OpenAmount"] == 0:
                    raise _Invalid(f"{where}: contact '{contact['Code'] or contact['FullName']}' has no open sales "
                                   f"item with reference {reference}")
                paid = -amount
                already = sum((a for i, a, _ in settle if i is item), Decimal(0))
                open_amount = item["OpenAmount"] - already
                if paid == 0 or (paid > 0) != (open_amount > 0) or abs(paid) > abs(open_amount):
                    raise _Invalid(f"{where}: {amount} does not settle the open item {reference} "
                                   f"({open_amount} open; a credit pays off a positive item)")
                settle.append((item, paid, day))
            entries.append({"ContactCode": contact["Code"] if contact else None, "EntryDate": day, "GLAccount": code,
                            "Amount": amount, "Description": _value(el, "Description") or "", "Reference": reference})
        total = sum((e["Amount"] for e in entries), Decimal(0))
        if total != 0:
            raise _Invalid(f"The journal does not balance: the entries sum to {total}")
        for item, paid, day in settle:
            item["OpenAmount"] -= paid
            item["LastPaymentDate"] = day
        record = {"DocumentID": str(uuid.uuid4()), "Subject": _value(doc, "DocumentSubject") or "",
                  "Entries": entries, "Settled": [(i["DocumentID"], paid) for i, paid, _ in settle]}
        admin.journals.append(record)
        return record

    def _op_GetTransactionDetails(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        admin = self._admin_for(domain, args["administrationID"])
        code = (args["GLAccountCode"] or "").strip()
        try:
            start = date.fromisoformat((args["StartDate"] or "")[:10])
            end = date.fromisoformat((args["EndDate"] or "")[:10])
        except ValueError:
            raise _Fault("StartDate / EndDate must be dates (yyyy-MM-dd)", client=True) from None
        subtype = str((admin.gl_accounts.get(code) or {}).get("subtype") or "").casefold()
        rows: list[dict[str, Any]] = []
        for inv in admin.invoices:
            if not inv["Processed"] or not start <= inv["Date"] <= end:
                continue
            rate = inv["CurrencyRate"]
            debit = 1 if inv["Type"] == "Sales" else -1  # the control account: sales debit, purchase credit
            base = {"transactionDate": inv["Date"], "description": inv["Subject"], "currencyRate": rate,
                    "currency": inv["Currency"], "documentID": inv["DocumentID"], "documentReference": inv["Reference"],
                    "contactCode": inv["ContactCode"], "fullName": inv["ContactName"], "glAccountCode": code}
            control = "debtors" if inv["Type"] == "Sales" else "creditors"
            if subtype == control:
                dc = sum((round_money(ln["LineAmount"] * rate) + round_money(ln["LineVATAmount"] * rate) for ln in inv["Lines"]), Decimal(0))
                rows.append({**base, "id": f"{inv['DocumentID']}-0", "transactionAmount": debit * dc,
                             "transactionAmountForeignCurrency": debit * inv["TotalAmount"]})
            for n, ln in enumerate(inv["Lines"], 1):
                if ln["GLAccountCode"] == code:
                    rows.append({**base, "id": f"{inv['DocumentID']}-{n}", "description": ln["Description"] or inv["Subject"],
                                 "transactionAmount": -debit * round_money(ln["LineAmount"] * rate),
                                 "transactionAmountForeignCurrency": -debit * ln["LineAmount"]})
        return rows, 0

    def _op_SearchInvoices(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        admin = self._admin_for(domain, args["administrationID"])
        kind, option, values = args["invoiceType"], args["searchOption"], args["searchValues"]
        if kind not in ("Sales", "Purchase", "All"):
            raise _Fault(f"Invalid invoiceType '{kind}' (Sales, Purchase, All)", client=True)
        fields = {"Reference": "Reference", "DocumentID": "DocumentID", "BookingNumber": "BookingNumber"}
        if option not in fields:
            raise _Fault(f"Invalid searchOption '{option}' (Reference, DocumentID, BookingNumber)", client=True)
        if len(values) > MAX_SEARCH_VALUES:
            raise _Fault(f"Too many searchValues: at most {MAX_SEARCH_VALUES} per call", client=True)
        wanted = {v.strip() for v in values}
        root = etree.Element("Invoices")
        for inv in admin.invoices:
            if kind != "All" and inv["Type"] != kind:
                continue
            if str(inv[fields[option]] or "") not in wanted:
                continue
            el = _sub(root, "Invoice", ID=inv["DocumentID"])
            for name in ("Type", "Reference", "BookingNumber", "Processed", "Date", "DueDate", "Currency", "Subject",
                         "ContactCode", "ContactName", "TotalAmountExclVAT", "TotalVATAmount", "TotalAmount",
                         "OpenAmount"):
                _sub(el, name, inv[name] if inv[name] is not None else "")
            lines = _sub(el, "InvoiceLines")
            for line in inv["Lines"]:
                ln = _sub(lines, "InvoiceLine")
                for name in ("Description", "GLAccountCode", "VATType", "VATPercentage", "LineAmount", "LineVATAmount"):
                    _sub(ln, name, line[name])
        return root, 0

    # -------------------------------------------------------------------------------------- contacts

    def _op_SearchContacts(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        self._domain_for(domain, args["domainID"])
        option, value = args["searchOption"] or "All", (args["searchValue"] or "").casefold()
        fields = {
            "Name": ("FullName",), "City": ("City",), "Postcode": ("PostCode",), "Tag": ("Tags",),
            "Email": ("Email",), "Website": ("Website",), "Phone": ("Phone",), "Code": ("Code",),
            "CoCNumber": ("CoCNumber",), "VATNumber": ("VATNumber",), "BankAccount": ("BankAccount",),
        }
        if option == "All":
            searched: tuple[str, ...] = tuple(sorted({f for names in fields.values() for f in names}))
        elif option in fields:
            searched = fields[option]
        else:
            raise _Fault(f"Invalid searchOption '{option}'", client=True)
        active = args.get("active") or "Both"
        if active not in ("Both", "Active", "Inactive"):
            raise _Fault(f"Invalid value '{active}' for active (Both, Active, Inactive)", client=True)
        order = args.get("sortOrder") or "Name"
        sorts: dict[str, tuple[Callable[[dict[str, Any]], Any], bool]] = {
            "Name": (lambda c: (c["FullName"] or "").casefold(), False),
            "LastName": (lambda c: (c.get("LastName") or c["FullName"] or "").casefold(), False),
            "CreatedAsc": (lambda c: c["_seq"], False), "CreatedDesc": (lambda c: c["_seq"], True),
            "ModifiedAsc": (lambda c: c["_mseq"], False), "ModifiedDesc": (lambda c: c["_mseq"], True),
            "HID": (lambda c: c["HID"], False),
        }
        if order not in sorts:
            raise _Fault(f"Invalid sortOrder '{order}'", client=True)
        modified_after: datetime | None = None
        if args.get("modifiedAfter"):
            try:
                modified_after = datetime.fromisoformat(args["modifiedAfter"]).replace(tzinfo=None)
            except ValueError:
                raise _Fault(f"Invalid modifiedAfter '{args['modifiedAfter']}'", client=True) from None
        page = int(args["pageNumber"])
        if page < 1:
            raise _Fault("pageNumber starts at 1", client=True)
        rows = [
            c for c in domain.contacts
            if (not value or any(value in str(c.get(f) or "").casefold() for f in searched))
            and (active == "Both" or c["Active"] == (active == "Active"))
            and (modified_after is None or c["Modified"] > modified_after)
        ]
        key, reverse = sorts[order]
        rows.sort(key=key, reverse=reverse)
        root = etree.Element("Contacts")
        for contact in rows[(page - 1) * self.page_size: page * self.page_size]:
            el = _sub(root, "Contact", ID=contact["ID"])
            for name in ("HID", "Code", "Type", "FullName", "FirstName", "MiddleName", "LastName", "AddressLine_1",
                         "AddressLine_2", "PostCode", "City", "Country", "Email", "Phone", "Website", "VATNumber",
                         "CoCNumber", "BankAccount", "Active"):
                _sub(el, name, contact.get(name) if contact.get(name) is not None else "")
            _sub(el, "Created", _stamp(contact["Created"]))
            _sub(el, "Modified", _stamp(contact["Modified"]))
        return root, 0

    def _op_UpdateContact(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        self._domain_for(domain, args["domainId"])
        root = etree.Element("ContactResult")
        doc = args["xmlDoc"]
        errors: list[str] = []
        if not isinstance(doc, etree._Element):
            errors.append("xmlDoc must contain the contact as XML elements, not as text")
        elif doc.tag != _q("Contact", NS_CONTACT):
            errors.append(f"root element {{{_ns(doc)}}}{_local(doc)} not expected, Contact in {NS_CONTACT} is")
        else:
            _check_structure(doc, _CONTACT_DOC, NS_CONTACT, "Contact", errors)
        try:
            if errors:
                raise _Invalid("XML validation failed: " + "; ".join(errors))
            assert isinstance(doc, etree._Element)
            data = {_local(c): (c.text or "").strip() for c in doc if isinstance(c.tag, str)}
            contact, action = self._upsert_contact(domain, data)
        except _Invalid as invalid:
            _sub(root, "Succeeded", False)
            _sub(root, "Action", "None")
            _sub(root, "ContactID", "")
            _sub(root, "Code", "")
            _sub(root, "Message", str(invalid))
            return root, 1
        _sub(root, "Succeeded", True)
        _sub(root, "Action", action)
        _sub(root, "ContactID", contact["ID"])
        _sub(root, "Code", contact["Code"] or "")
        _sub(root, "Message", "")
        return root, 0

    def _upsert_contact(self, domain: _Domain, data: dict[str, str]) -> tuple[dict[str, Any], str]:
        """UpdateContact's matching (§3.5): ID, then Code (most recent), then Type + FullName among
        contacts without a code (narrowed by Email, most recent); else create."""
        type_ = int(data["Type"]) if data.get("Type") else 2
        if type_ not in (0, 2):
            raise _Invalid(f"Type {type_} is not valid (0 person, 2 company)")
        emails = _emails(data.get("Email"))
        if len(emails) > 1:
            raise _Invalid(f"Email '{data['Email']}' holds more than one e-mail address")
        full_name = data.get("FullName") or " ".join(
            p for p in (data.get("FirstName"), data.get("MiddleName"), data.get("LastName")) if p)
        changes: dict[str, Any] = {k: v for k, v in data.items() if v != "" and k not in ("ID", "Type", "Active")}
        changes["Type"] = type_
        if full_name:
            changes["FullName"] = full_name
        if "Active" in data and data["Active"] != "":
            changes["Active"] = _bool(data["Active"], True)
        target: dict[str, Any] | None = None
        if data.get("ID"):
            target = next((c for c in domain.contacts if c["ID"] == data["ID"].lower()), None)
            if target is None:
                raise _Invalid(f"Contact with ID {data['ID']} not found")
        elif data.get("Code"):
            same = [c for c in domain.contacts if c["Code"] == data["Code"]]
            target = max(same, key=lambda c: c["_seq"]) if same else None
        if target is None and not data.get("ID") and full_name:
            key = _name_key(full_name)
            same = [c for c in domain.contacts if not c["Code"] and c["Type"] == type_
                    and (c["FullName"] == full_name or _name_key(c["FullName"] or "") == key)]
            if emails and len(same) > 1:
                narrowed = [c for c in same if (c["Email"] or "").casefold() == emails[0].casefold()]
                same = narrowed or same
            target = max(same, key=lambda c: c["_seq"]) if same else None
        if target is not None:
            target.update(changes)
            self._seq += 1
            target["_mseq"] = self._seq
            target["Modified"] = _now_dt().replace(tzinfo=None)
            return target, "Updated"
        if not full_name:
            raise _Invalid("A new contact needs a name (FullName, or FirstName / LastName)")
        return self._new_contact(domain, changes), "Created"

    def _new_contact(self, domain: _Domain, data: Mapping[str, Any]) -> dict[str, Any]:
        self._seq += 1
        now = _now_dt().replace(tzinfo=None)
        contact: dict[str, Any] = {
            "ID": str(uuid.uuid4()), "HID": len(domain.contacts) + 1, "Code": None, "Type": 2, "FullName": "",
            "FirstName": None, "MiddleName": None, "LastName": None, "AddressLine_1": None, "AddressLine_2": None,
            "PostCode": None, "City": None, "Country": None, "Email": None, "Phone": None, "Website": None,
            "VATNumber": None, "CoCNumber": None, "BankAccount": None, "Active": True, "Created": now,
            "Modified": now, "_seq": self._seq, "_mseq": self._seq,
        }
        contact.update({k: v for k, v in data.items() if v is not None})
        domain.contacts.append(contact)
        return contact

    # -------------------------------------------------------------------------------------- invoices

    def _op_ProcessSalesInvoices(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        return self._import(domain, args["administrationId"], args["xmlDoc"], _SALES)

    def _op_ProcessPurchaseInvoices(self, domain: _Domain, session: _Session, args: dict[str, Any]) -> tuple[Any, int]:
        return self._import(domain, args["administrationId"], args["xmlDoc"], _PURCHASE)

    def _import(self, domain: _Domain, administration: str, doc: Any, side: _Side) -> tuple[etree._Element, int]:
        admin = self._admin_for(domain, administration)
        root = etree.Element(_q(side.response_root, side.response_ns), nsmap={None: side.response_ns})
        _sub(root, "TimeStamp", _stamp())
        _sub(root, "AdministrationId", admin.id)
        totals = [_sub(root, name, 0) for name in ("TotalSucceeded", "TotalFailed", "TotalSkipped")]

        errors: list[str] = []
        if not isinstance(doc, etree._Element):
            errors.append("xmlDoc must contain the invoices as XML elements, not as text")
        elif doc.tag != _q(side.root, side.ns):
            errors.append(f"root element {{{_ns(doc)}}}{_local(doc)} not expected, {side.root} in {side.ns} is")
        else:
            _check_structure(doc, {side.item: (side.spec, False, True)}, side.ns, side.root, errors)
        if errors:
            _sub(root, "Message", "XML validation failed: " + "; ".join(errors[:10]))
            return root, 0

        assert isinstance(doc, etree._Element)
        succeeded = failed = skipped = 0
        for inv_el in (c for c in doc if isinstance(c.tag, str)):
            result = _sub(root, "Invoice")
            reference = _value(inv_el, "Reference") or ""
            subject = _value(inv_el, "Subject") or _value(inv_el, "Remarks") or ""
            contact_el = _child(inv_el, "Contact")
            given_code = (_value(contact_el, "ContactCode") if contact_el is not None else None) or ""
            if failed >= self.max_failed:
                skipped += 1
                self._result(result, side, False, False, reference, subject, given_code,
                             f"Skipped: the import stopped after {self.max_failed} failed invoices")
                continue
            contacts_before = list(domain.contacts)
            try:
                record = self._book(domain, admin, inv_el, side)
            except _Invalid as invalid:
                domain.contacts[:] = contacts_before  # full rollback, the contact it created included
                failed += 1
                self._result(result, side, False, False, reference, subject, given_code, str(invalid))
                continue
            succeeded += 1
            self._result(result, side, True, record["Processed"], reference, subject, record["ContactCode"] or "", "")
            _sub(result, "BookingNumber", record["BookingNumber"] or "")
            _sub(result, "DocumentID", record["DocumentID"])
        for el, value in zip(totals, (succeeded, failed, skipped), strict=True):
            el.text = str(value)
        return root, failed

    @staticmethod
    def _result(result: etree._Element, side: _Side, succeeded: bool, processed: bool, reference: str, subject: str,
                contact: str, message: str) -> None:
        """One ``Invoice`` of an import response: sales ``{Succeeded, Processed, EmailSent, Reference,
        Subject, Message}`` (§3.6), purchase ``{Succeeded, Processed, Reference, Subject, Contact, Message}``
        (§3.7; ``Contact`` = the supplier's code)."""
        _sub(result, "Succeeded", succeeded)
        _sub(result, "Processed", processed)
        if side is _SALES:
            _sub(result, "EmailSent", False)
        _sub(result, "Reference", reference)
        _sub(result, "Subject", subject)
        if side is _PURCHASE:
            _sub(result, "Contact", contact)
        _sub(result, "Message", message)

    def _book(self, domain: _Domain, admin: _Admin, inv: etree._Element, side: _Side) -> dict[str, Any]:
        """Check one invoice's business rules and book it; :class:`_Invalid` with the message otherwise."""
        process = _bool(_value(inv, "Process"))
        reference = _value(inv, "Reference")
        contact_el = _child(inv, "Contact")
        assert contact_el is not None
        code = _value(contact_el, "ContactCode")
        if process and not reference:
            raise _Invalid("Reference is required when Process is true")
        if side is _SALES and reference and any(
            i["Reference"] == reference and i["Type"] == "Sales" for i in admin.invoices
        ):
            raise _Invalid(f"Er bestaat al een factuur met het factuurnummer {reference}.")
        day_text = _value(inv, "Date")
        if not day_text:
            raise _Invalid("Date is required")
        day = date.fromisoformat(day_text)
        if admin.closed_until is not None and day <= admin.closed_until:
            raise _Invalid(f"Period closed: the period of {day.isoformat()} is closed in this administration")
        due = date.fromisoformat(_value(inv, "DueDate") or (day + timedelta(days=30)).isoformat())
        currency = _value(inv, "Currency") or admin.currency
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise _Invalid(f"Currency '{currency}' is unknown")
        if currency == admin.currency:
            rate = Decimal(1)
        else:  # Yuki applies its own rate table: the import carries no rate (never rate 1)
            known = [row for row in admin.exchange_rates.get(currency, []) if row[0] <= day]
            if not known:
                raise _Invalid(f"No exchange rate for currency {currency} on {day.isoformat()} in this administration")
            rate = max(known)[1]

        # Contact (§3.5, §3.6): by code (most recent), else by name among uncoded ones, else created.
        emails = _emails(_value(contact_el, "EmailAddress"))
        if len(emails) > 1:
            raise _Invalid(f"Contact: EmailAddress '{_value(contact_el, 'EmailAddress')}' holds more than one "
                           f"e-mail address; only one is allowed")
        contact = self._invoice_contact(domain, contact_el, code)
        if side is _PURCHASE and reference and any(
            i["Reference"] == reference and i["Type"] == "Purchase"
            and (i["ContactID"] == contact["ID"] or (code is not None and i["ContactCode"] == code))
            for i in admin.invoices
        ):
            # suppliers' numbers collide: unique per supplier (the contact the invoice resolves to)
            raise _Invalid(f"Er bestaat al een factuur met het factuurnummer {reference} voor deze leverancier.")

        lines = [self._line(admin, el, side, n) for n, el in
                 enumerate((c for c in _child(inv, "InvoiceLines") if isinstance(c.tag, str)), 1)]  # type: ignore[union-attr]
        net = sum((ln["LineAmount"] for ln in lines), Decimal(0))
        vat = sum((ln["LineVATAmount"] for ln in lines), Decimal(0))
        if side is _PURCHASE:
            stated = Decimal(_value(inv, "InvoiceAmount") or "0")
            if not _amount_ok(stated):
                raise _Invalid(f"InvoiceAmount {stated}: at most 10 integer digits and 2 decimals")
            if stated != net + vat:
                raise _Invalid(f"InvoiceAmount {stated} does not match the total of the lines {net + vat}")
            stated_vat = _value(inv, "InvoiceVATAmount")
            if stated_vat is not None and Decimal(stated_vat) != vat:
                raise _Invalid(f"InvoiceVATAmount {stated_vat} does not match the VAT of the lines {vat}")

        type_ = "Sales" if side is _SALES else "Purchase"
        number = None
        if process:
            admin.sequences[(side.name, day.year)] += 1
            number = admin.booking_number_format.format(year=day.year, seq=admin.sequences[(side.name, day.year)])
        record = {
            "DocumentID": str(uuid.uuid4()), "Type": type_, "Reference": reference, "BookingNumber": number,
            "Processed": process, "Date": day, "DueDate": due, "Currency": currency, "CurrencyRate": rate,
            "Subject": _value(inv, "Subject") or _value(inv, "Remarks") or "",
            "PaymentMethod": _value(inv, "PaymentMethod"), "PaymentID": _value(inv, "PaymentID"),
            "ContactID": contact["ID"], "ContactCode": contact["Code"], "ContactName": contact["FullName"],
            "TotalAmountExclVAT": net, "TotalVATAmount": vat, "TotalAmount": net + vat,
            "OpenAmount": net + vat if process else Decimal(0), "LastPaymentDate": None, "Lines": lines,
        }
        admin.invoices.append(record)
        return record

    def _invoice_contact(self, domain: _Domain, el: etree._Element, code: str | None) -> dict[str, Any]:
        if code:
            same = [c for c in domain.contacts if c["Code"] == code]
            if same:
                return max(same, key=lambda c: c["_seq"])
        contact_type = 0 if _value(el, "ContactType") == "Person" else 2
        full_name = _value(el, "FullName") or " ".join(
            p for p in (_value(el, "FirstName"), _value(el, "MiddleName"), _value(el, "LastName")) if p)
        if not code and full_name:
            key = _name_key(full_name)
            same = [c for c in domain.contacts if not c["Code"] and c["Type"] == contact_type
                    and _name_key(c["FullName"] or "") == key]
            if same:
                return max(same, key=lambda c: c["_seq"])
        if not full_name:
            raise _Invalid(f"Contact{' ' + code if code else ''}: a new contact needs a name (FullName)")
        return self._new_contact(domain, {
            "Code": code, "Type": contact_type, "FullName": full_name, "FirstName": _value(el, "FirstName"),
            "MiddleName": _value(el, "MiddleName"), "LastName": _value(el, "LastName"),
            "AddressLine_1": _value(el, "AddressLine_1"), "AddressLine_2": _value(el, "AddressLine_2"),
            "PostCode": _value(el, "Zipcode"), "City": _value(el, "City"), "Country": _value(el, "CountryCode"),
            "Email": _value(el, "EmailAddress"), "Website": _value(el, "Website"),
            "VATNumber": _value(el, "VATNumber"), "CoCNumber": _value(el, "CoCNumber"),
            "BankAccount": _value(el, "BankAccount"),
        })

    def _line(self, admin: _Admin, el: etree._Element, side: _Side, n: int) -> dict[str, Any]:
        """One invoice line: GL account, VAT type / percentage, amount excl. VAT and VAT (Yuki's sign)."""
        where = f"line {n}"
        if side is _SALES:
            product = _child(el, "Product")
            assert product is not None
            gl_code, vat_type, pct_text = (_value(product, "GLAccountCode"), _value(product, "VATType"),
                                           _value(product, "VATPercentage"))
            description = _value(el, "Description") or _value(product, "Description") or ""
            quantity = Decimal(_value(el, "ProductQuantity") or "1")
            price_text, amount_text = _value(product, "SalesPrice"), _value(el, "LineAmount")
            included = _bool(_value(product, "VATIncluded"))
        else:
            gl_code, vat_type, pct_text = (_value(el, "GLAccountCode"), _value(el, "LineVATType"),
                                           _value(el, "LineVATPercentage"))
            description = _value(el, "Description") or ""
            quantity, price_text, amount_text, included = Decimal(1), None, _value(el, "LineAmount"), False
        if not gl_code:
            raise _Invalid(f"{where}: GLAccountCode is required")
        gl = admin.gl_accounts.get(gl_code)
        if gl is None:
            raise _Invalid(f"{where}: GL account '{gl_code}' does not exist in this administration")
        if not gl["isEnabled"]:
            raise _Invalid(f"{where}: GL account '{gl_code}' is blocked")
        if not vat_type:
            raise _Invalid(f"{where}: VATType is required")
        vat_type = str(int(vat_type))
        if vat_type not in VAT_TYPES:
            raise _Invalid(f"{where}: VAT type {vat_type} is unknown")
        pct = VAT_TYPES[vat_type][1]
        if pct_text is not None and Decimal(pct_text) != pct:
            raise _Invalid(f"{where}: VAT percentage {pct_text} does not match VAT type {vat_type} ({pct}%)")
        price = Decimal(price_text) if price_text is not None else None
        for what, value in (("SalesPrice", price), ("LineAmount", Decimal(amount_text) if amount_text else None)):
            if value is not None and not _amount_ok(value):
                raise _Invalid(f"{where}: {what} {value}: at most 10 integer digits and 2 decimals are allowed")
        if amount_text is not None:
            amount = Decimal(amount_text)
            if price is not None and abs(quantity * price - amount) > Decimal("0.01"):
                raise _Invalid(f"{where}: LineAmount {amount} differs from ProductQuantity x SalesPrice "
                               f"({quantity} x {price})")
        elif price is not None:
            amount = round_money(quantity * price)
        else:
            raise _Invalid(f"{where}: SalesPrice or LineAmount is required")
        if included:
            net = round_money(amount * 100 / (100 + pct))
            computed_vat = amount - net
        else:
            net = amount
            computed_vat = round_money(net * pct / 100)
        vat = computed_vat
        vat_text = _value(el, "LineVATAmount")
        if vat_text is not None:
            vat = Decimal(vat_text)
            if not _amount_ok(vat):
                raise _Invalid(f"{where}: LineVATAmount {vat}: at most 10 integer digits and 2 decimals are allowed")
            if abs(vat - computed_vat) > VAT_TOLERANCE:
                raise _Invalid(f"{where}: LineVATAmount {vat} differs from {computed_vat} ({net} x {pct}%) by more "
                               f"than {VAT_TOLERANCE}")
        return {"Description": description, "GLAccountCode": gl_code, "VATType": vat_type, "VATPercentage": pct,
                "LineAmount": round_money(net), "LineVATAmount": round_money(vat)}

    # --------------------------------------------------------------------------------------- helpers

    def _domain(self, domain: str) -> _Domain:
        try:
            return self._domains[domain.lower()]
        except KeyError:
            raise KeyError(f"unknown domain {domain}") from None

    def _admin(self, administration: str) -> _Admin:
        try:
            return self._admins[administration.lower()]
        except KeyError:
            raise KeyError(f"unknown administration {administration}") from None

    def _admin_for(self, domain: _Domain, administration: str) -> _Admin:
        admin = self._admins.get((administration or "").strip().lower())
        if admin is None or admin.domain != domain.id:
            raise _Fault("No rights: the administration is not part of this session's domain")
        if not admin.active:
            raise _Fault("No rights: the administration is inactive")
        return admin

    def _domain_for(self, domain: _Domain, given: str) -> None:
        given = (given or "").strip().lower()
        if given == domain.id:
            return
        admin = self._admins.get(given)
        if admin is not None and admin.domain == domain.id:
            return  # single-administration setups accept the administration GUID (§3.2, Apideck)
        raise _Fault("No rights: the domain is not this session's domain")

    def _stat(self, name: str, what: str) -> None:
        self._stats.setdefault(name, Counter())[what] += 1

    # ------------------------------------------------------------------------------------------- WSDL

    def wsdl(self, service: str, base_url: str = "https://api.yukiworks.nl") -> bytes:
        """The WSDL of ``service`` (document/literal, SOAP 1.1 + 1.2 bindings) for the operations this
        sandbox implements; ``xmlDoc`` and XML results are ``mixed`` ``any`` content (§3.1)."""
        ops = _SERVICES[service]
        xs = "http://www.w3.org/2001/XMLSchema"
        parts = [
            '<?xml version="1.0" encoding="utf-8"?>',
            f'<wsdl:definitions xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
            f'xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:s="{xs}" xmlns:tns="{NS}" '
            f'xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" targetNamespace="{NS}">',
            f'<wsdl:types><s:schema xmlns:s="{xs}" xmlns:tns="{NS}" elementFormDefault="qualified" targetNamespace="{NS}">',
        ]
        mixed = '<s:complexType mixed="true"><s:sequence><s:any /></s:sequence></s:complexType>'
        types = {"string": "s:string", "int": "s:int", "boolean": "s:boolean", "strings": "tns:ArrayOfString",
                 "glaccounts": "tns:ArrayOfGlAccount", "transactions": "tns:ArrayOfTransactionInfo"}
        for op in ops.values():
            parts.append(f'<s:element name="{op.name}"><s:complexType><s:sequence>')
            for name, ptype in op.params:
                if ptype == "xml":
                    parts.append(f'<s:element minOccurs="0" maxOccurs="1" name="{name}">{mixed}</s:element>')
                else:
                    occurs = 'minOccurs="1"' if ptype in ("int", "boolean") and name not in op.optional else 'minOccurs="0"'
                    parts.append(f'<s:element {occurs} maxOccurs="1" name="{name}" type="{types[ptype]}" />')
            parts.append("</s:sequence></s:complexType></s:element>")
            parts.append(f'<s:element name="{op.name}Response"><s:complexType><s:sequence>')
            if op.result == "xml":
                parts.append(f'<s:element minOccurs="0" maxOccurs="1" name="{op.name}Result">{mixed}</s:element>')
            else:
                parts.append(f'<s:element minOccurs="0" maxOccurs="1" name="{op.name}Result" type="{types[op.result]}" />')
            parts.append("</s:sequence></s:complexType></s:element>")
        parts.append('<s:complexType name="ArrayOfString"><s:sequence><s:element minOccurs="0" maxOccurs="unbounded" '
                     'name="string" nillable="true" type="s:string" /></s:sequence></s:complexType>')
        parts.append('<s:complexType name="ArrayOfGlAccount"><s:sequence><s:element minOccurs="0" '
                     'maxOccurs="unbounded" name="GlAccount" nillable="true" type="tns:GlAccount" /></s:sequence>'
                     '</s:complexType>')
        parts.append('<s:complexType name="GlAccount"><s:sequence>'
                     + "".join(f'<s:element minOccurs="{m}" maxOccurs="1" name="{n}" type="s:{t}" />'
                               for n, t, m in (("code", "string", 0), ("type", "string", 0), ("subtype", "string", 0),
                                               ("isEnabled", "boolean", 1), ("descripton", "string", 0),
                                               ("isVATApplicable", "boolean", 1)))
                     + "</s:sequence></s:complexType>")
        parts.append('<s:complexType name="ArrayOfTransactionInfo"><s:sequence><s:element minOccurs="0" '
                     'maxOccurs="unbounded" name="TransactionInfo" nillable="true" type="tns:TransactionInfo" />'
                     '</s:sequence></s:complexType>')
        parts.append('<s:complexType name="TransactionInfo"><s:sequence>'
                     + "".join(f'<s:element minOccurs="0" maxOccurs="1" name="{n}" type="s:{t}" />'
                               for n, t in _TRANSACTION_FIELDS.items())
                     + "</s:sequence></s:complexType>")
        parts.append("</s:schema></wsdl:types>")
        for op in ops.values():
            parts.append(f'<wsdl:message name="{op.name}SoapIn"><wsdl:part name="parameters" element="tns:{op.name}" />'
                         f"</wsdl:message>")
            parts.append(f'<wsdl:message name="{op.name}SoapOut"><wsdl:part name="parameters" '
                         f'element="tns:{op.name}Response" /></wsdl:message>')
        parts.append(f'<wsdl:portType name="{service}Soap">')
        for op in ops.values():
            parts.append(f'<wsdl:operation name="{op.name}"><wsdl:input message="tns:{op.name}SoapIn" />'
                         f'<wsdl:output message="tns:{op.name}SoapOut" /></wsdl:operation>')
        parts.append("</wsdl:portType>")
        for suffix, prefix in (("Soap", "soap"), ("Soap12", "soap12")):
            parts.append(f'<wsdl:binding name="{service}{suffix}" type="tns:{service}Soap">'
                         f'<{prefix}:binding transport="http://schemas.xmlsoap.org/soap/http" />')
            for op in ops.values():
                parts.append(f'<wsdl:operation name="{op.name}"><{prefix}:operation soapAction="{NS}{op.name}" '
                             f'style="document" /><wsdl:input><{prefix}:body use="literal" /></wsdl:input>'
                             f'<wsdl:output><{prefix}:body use="literal" /></wsdl:output></wsdl:operation>')
            parts.append("</wsdl:binding>")
        location = escape(f"{base_url}/ws/{service}.asmx")
        parts.append(f'<wsdl:service name="{service}">'
                     f'<wsdl:port name="{service}Soap" binding="tns:{service}Soap"><soap:address location="{location}" />'
                     f"</wsdl:port>"
                     f'<wsdl:port name="{service}Soap12" binding="tns:{service}Soap12">'
                     f'<soap12:address location="{location}" /></wsdl:port></wsdl:service>')
        parts.append("</wsdl:definitions>")
        return "".join(parts).encode("utf-8")


class _HttpFailure(Exception):
    """An injected non-SOAP HTTP failure (proxy / IIS error page)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# ---------------------------------------------------------------------------------------------- demo

_ZERO_CATEGORIES = {"Z": "3", "AE": "4", "E": "5", "O": "6", "G": "7", "K": "8"}
_DOMESTIC = {Decimal("21"): "1", Decimal("6"): "2", Decimal("9"): "9", Decimal("12"): "10"}


def vat_type_for(rate: HostRate) -> str | None:
    """The VAT type (:data:`VAT_TYPES` code) an admin links to a host VAT rate: by UNCL5305 category for
    0 % rates (Z 3, AE 4, E 5, O 6, G 7, K 8; other 0 % rates 3), by percentage otherwise (21 → 1, 6 → 2,
    9 → 9, 12 → 10, other EU rates → the OSS type of that percentage); ``None`` when none fits."""
    pct = Decimal(rate.percentage)
    category = (rate.category or "S").upper()
    if pct == 0:
        return _ZERO_CATEGORIES.get(category, "3")
    if pct in _DOMESTIC:
        return _DOMESTIC[pct]
    return next((code for code, (_, p) in VAT_TYPES.items() if int(code) >= 11 and p == pct), None)


def demo_administration(sandbox: YukiSandbox, request: AdminRequest) -> Administration:
    """Set up a domain and administration as the demo's admin would, for sales and purchases.

    GL accounts: 130000 debtors, 160000 creditors, 199000 payments to be processed (transit: the paid
    status host -> Yuki books there, :meth:`YukiAdapter.register_payments`), 840000 sales discounts, 740000 purchase discounts
    received, and per host VAT rate (n = 01, 02, … in ``request.rates`` order) one revenue account
    ``8000nn`` and one cost account ``7000nn`` (cost of sales, Yuki's 7-series; the demo's choice).
    Integration settings: each host rate linked to its VAT type (:func:`vat_type_for`; rates no type fits
    stay unlinked) for sales (``vat_codes``) **and** purchases (``purchase_vat_codes``: Yuki's VAT types
    serve both sides, §3.4), to its revenue account (``ledger_accounts``) and cost account
    (``expense_ledger_accounts``); discounts on ``{"*": "840000"}`` (sales) and ``{"*": "740000"}``
    (purchases). Yuki has no journals as entities (§3.4), so the synthetic journals the adapter exposes
    are chosen: ``SALES`` for outgoing, ``PURCHASE`` for incoming invoices and credit notes.
    ``connection`` = ``{"administration_id", "domain_id"}``, ``credentials`` = ``{"access_key"}``,
    ``app_secret`` empty (the Purchase client id / secret of §3.2 is not simulated)."""
    import secrets

    domain = sandbox.add_domain(f"{request.name} domain")
    admin = sandbox.add_administration(domain, request.name, country="BE", currency=request.company_currency)
    for currency in sorted(request.currencies - {request.company_currency}):
        if currency in DEMO_RATES:  # a currency without a demo rate stays without one: Yuki refuses its invoices
            sandbox.add_exchange_rate(admin, currency, DEMO_RATES[currency])
    key = "demo-" + secrets.token_hex(16)
    sandbox.add_access_key(key, domain)
    sandbox.add_gl_account(admin, "130000", "Trade debtors", "B", subtype="Debtors", vat_applicable=False)
    sandbox.add_gl_account(admin, "160000", "Trade creditors", "B", subtype="Creditors", vat_applicable=False)
    sandbox.add_gl_account(admin, "199000", "Payments to be processed", "B", subtype="Transit", vat_applicable=False)
    sandbox.add_gl_account(admin, "840000", "Sales discounts", "W", subtype="Revenue")
    sandbox.add_gl_account(admin, "740000", "Purchase discounts received", "W", subtype="Cost of sales")
    settings = Administration(
        connection={"administration_id": admin, "domain_id": domain},
        credentials={"access_key": key},
        app_secret={},
        journals=JournalSettings(outgoing_invoices="SALES", outgoing_credit_notes="SALES",
                                 incoming_invoices="PURCHASE", incoming_credit_notes="PURCHASE"),
        discount_ledger_accounts={"*": "840000"},
        purchase_discount_ledger_accounts={"*": "740000"},
    )
    for n, rate in enumerate(request.rates, start=1):
        revenue, cost = f"8000{n:02d}", f"7000{n:02d}"
        sandbox.add_gl_account(admin, revenue, f"Revenue {rate.description}", "W", subtype="Revenue")
        sandbox.add_gl_account(admin, cost, f"Purchases {rate.description}", "W", subtype="Cost of sales")
        settings.ledger_accounts[rate.id] = revenue
        settings.expense_ledger_accounts[rate.id] = cost
        vat_type = vat_type_for(rate)
        if vat_type is not None:
            settings.vat_codes[rate.id] = vat_type
            settings.purchase_vat_codes[rate.id] = vat_type
    return settings
