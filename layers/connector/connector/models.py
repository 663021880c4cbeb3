"""Domain models shared by the sync engine, the adapters, the host client and the stores.

Conventions (apply to every model here):

- Money is ``Decimal`` in currency units of the document currency (``currency``), never float.
- A document's amounts are in **its own sign**: an invoice's amounts are positive (a "negative invoice"
  negative), a credit note's amounts are positive too. The sign an accounting tool wants (Exact: negative
  lines on a credit note; Octopus: negative total, positive lines) is applied by its adapter, only there.
- VAT percentages are ``Decimal`` percent (``Decimal("21")`` = 21 %), not fractions.
- Ids of the host product are strings (UUIDs); ids of a tool are strings as the tool gives them.

Sources: EN 16931 / Peppol BIS 3 for document semantics (BT-/BG- numbers cited on fields), the seeds
(``shared/seeds/000``) for the components, statuses and setup, ``shared/reference/host-api.md`` for the
host product's shapes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.money import to_decimal


class _Model(BaseModel):
    # defer_build: each model's validator is built when first used, not at import (a cold start of the
    # API uses a few of them; issue 8: handler import time)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


def _money(value: object) -> Decimal:
    return to_decimal(value)


# --------------------------------------------------------------------------------------------- enums


class Component(StrEnum):
    """The components of a sync, in the fixed order they run (seed 000, "Synchronisation after setup")."""

    LEDGER_ACCOUNTS = "ledger_accounts"
    CUSTOMERS = "customers"
    OUTGOING_INVOICES = "outgoing_invoices"
    OUTGOING_CREDIT_NOTES = "outgoing_credit_notes"
    SUPPLIERS = "suppliers"
    INCOMING_INVOICES = "incoming_invoices"
    INCOMING_CREDIT_NOTES = "incoming_credit_notes"

    @property
    def label(self) -> str:
        """The human label the host product shows for this component."""
        return _COMPONENT_LABELS[self]


_COMPONENT_LABELS = {
    Component.LEDGER_ACCOUNTS: "Ledger accounts",
    Component.CUSTOMERS: "Customers",
    Component.OUTGOING_INVOICES: "Outgoing invoices",
    Component.OUTGOING_CREDIT_NOTES: "Outgoing credit notes",
    Component.SUPPLIERS: "Suppliers",
    Component.INCOMING_INVOICES: "Incoming invoices",
    Component.INCOMING_CREDIT_NOTES: "Incoming credit notes",
}

COMPONENT_ORDER: tuple[Component, ...] = tuple(Component)


class ComponentStatus(StrEnum):
    """Status of one component of a run (seed 003, "Sync statuses")."""

    PENDING = "Pending"
    IN_PROGRESS = "In progress"
    SUCCESS = "Success"
    WARNING = "Warning"
    ERROR = "Error"


class RunStatus(StrEnum):
    """Overall status of a run (seed 003). ``RUNNING`` is the connector's own status while it goes on."""

    RUNNING = "Running"
    SUCCESS = "Success"
    WARNING = "Warning"
    ERROR = "Error"
    STALLED = "Stalled"


class Trigger(StrEnum):
    """What started a run. Only manual runs notify their starter (seed 000, "Notifications")."""

    MANUAL = "manual"
    NIGHTLY = "nightly"
    WEBHOOK = "webhook"


class DocumentKind(StrEnum):
    """Invoice (UNCL1001 380 and kin) or credit note (381 and kin)."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class Direction(StrEnum):
    """Outgoing = sales (the entity issued it); incoming = purchase (the entity received it)."""

    OUTGOING = "outgoing"
    INCOMING = "incoming"


class DocumentOutcome(StrEnum):
    """What a run did with one document (the report's ``status``)."""

    SYNCED = "synced"
    ALREADY_SYNCED = "already_synced"
    SKIPPED = "skipped"
    WOULD_SYNC = "would_sync"  # a dry run: the entry that would be booked is recorded, nothing is sent


class RelationKind(StrEnum):
    """A host relation is a company or a contact (person); host-api.md §6."""

    COMPANY = "company"
    CONTACT = "contact"


class Tool(StrEnum):
    """The accounting tools a company entity can connect."""

    EXACT = "exact"
    OCTOPUS = "octopus"
    YUKI = "yuki"


# -------------------------------------------------------------------------------------- documents


class Address(_Model):
    """Postal address; ``country`` is ISO 3166-1 alpha-2."""

    line_1: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None


class Party(_Model):
    """A relation (customer or supplier) as the host product knows it.

    ``host_id`` + ``kind`` identify it in the host product. ``customer_number`` is the host's stable
    numeric customer / supplier number (host extension, host-api.md "How the project uses this"); tools
    that need a relation code derive it from it. ``vat_type`` is the host extension ``vat_liable``,
    ``contractor``, ``private_person``, ``intra_community``, ``not_liable`` or ``None``.
    ``external_id`` is the relation's code in the company entity's accounting tool when the relation
    was imported from it or linked to it (host extension ``external_ids``, see
    :mod:`connector.onboarding`): Exact account ``Code``, Octopus ``relationKey.id``, Yuki contact
    ``Code``. When set, the adapters use that tool relation as it is instead of finding or creating one.
    """

    host_id: str
    kind: RelationKind = RelationKind.COMPANY
    name: str
    vat_number: str | None = None
    company_number: str | None = None
    email: str | None = None
    address: Address = Address()
    customer_number: str | None = None
    vat_type: str | None = None
    external_id: str | None = None


class VatRate(_Model):
    """A VAT rate of the host product (``taxRates.list`` row, per company entity).

    ``percentage`` is percent. ``category`` is the UNCL5305 VAT category the rate stands for (S, Z, E, AE,
    K, G, O, L, M) when known: the host keeps it as an extension; the real public API has only a
    description.
    """

    id: str
    description: str
    percentage: Decimal
    category: str | None = None

    _v = field_validator("percentage", mode="before")(_money)


class DocumentLine(_Model):
    """One invoice line (EN 16931 BG-25), amounts in the document currency, document sign.

    ``net_amount`` is BT-131 (quantity x price, after line allowances, plus line charges), excl. VAT.
    ``ledger_account`` is the revenue / cost account the host has on the line (host extension), or
    ``None`` (then the integration's VAT-rate -> ledger-account link applies).
    """

    description: str = ""
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    net_amount: Decimal
    vat_rate_id: str
    ledger_account: str | None = None

    _v = field_validator("quantity", "net_amount", mode="before")(_money)

    @field_validator("unit_price", mode="before")
    @classmethod
    def _price(cls, value: object) -> Decimal | None:
        return None if value is None else to_decimal(value, "unit_price")


class DocumentAllowanceCharge(_Model):
    """A document-level allowance (discount, BG-20) or charge (BG-21), excl. VAT, positive amount."""

    is_charge: bool
    amount: Decimal
    reason: str = ""
    vat_rate_id: str

    _v = field_validator("amount", mode="before")(_money)


class VatSubtotal(_Model):
    """VAT breakdown per VAT rate (BG-23): taxable amount (BT-116) and VAT amount (BT-117).

    ``vat_rate_id`` is the VAT rate (category BT-118 and rate BT-119) the subtotal is for. A source that
    gives its breakdown per *numeric* rate only (the host product's public API, host-api.md §4.3) cannot
    tell apart the document's VAT rates of one percentage: its subtotal then stands for ``vat_rate_id``
    and the ``shared_rate_ids`` together, and is checked against all their lines at once.
    """

    vat_rate_id: str
    taxable_amount: Decimal
    vat_amount: Decimal
    shared_rate_ids: tuple[str, ...] = ()

    _v = field_validator("taxable_amount", "vat_amount", mode="before")(_money)


class DocumentTotals(_Model):
    """Document totals (BG-22), document currency and sign.

    ``net`` = BT-109 (excl. VAT), ``vat`` = BT-110, ``gross`` = BT-112 (incl. VAT), ``prepaid`` = BT-113,
    ``rounding`` = BT-114, ``payable`` = BT-115 (= gross - prepaid + rounding).
    """

    net: Decimal
    vat: Decimal
    gross: Decimal
    prepaid: Decimal = Decimal(0)
    rounding: Decimal = Decimal(0)
    payable: Decimal

    _v = field_validator("net", "vat", "gross", "prepaid", "rounding", "payable", mode="before")(_money)


class Document(_Model):
    """An invoice or credit note to book, host-agnostic.

    ``host_id`` is the host product's id (``invoices.info`` id); ``number`` its document number (BT-1).
    ``exchange_rate`` converts the document currency into the company currency (1 unit of ``currency`` =
    ``exchange_rate`` units of company currency) when known. ``tax_currency`` / ``vat_in_tax_currency``
    are BT-6 / BT-111 (VAT total in the VAT accounting currency) when the document has them. ``vat_rates`` describes every VAT rate id the
    lines, allowances/charges and subtotals refer to. ``source`` names the file it came from (demo/report).
    ``booking_number`` is set when the host already holds one (the document was synced before).
    """

    host_id: str
    kind: DocumentKind
    direction: Direction = Direction.OUTGOING
    number: str
    issue_date: date
    due_date: date | None = None
    currency: str
    exchange_rate: Decimal | None = None
    tax_currency: str | None = None
    vat_in_tax_currency: Decimal | None = None
    party: Party
    lines: tuple[DocumentLine, ...]
    allowance_charges: tuple[DocumentAllowanceCharge, ...] = ()
    vat_breakdown: tuple[VatSubtotal, ...]
    vat_rates: tuple[VatRate, ...]
    totals: DocumentTotals
    payment_reference: str | None = None
    source: str | None = None
    booking_number: str | None = None
    updated_at: str | None = None

    def vat_rate(self, rate_id: str) -> VatRate:
        """The :class:`VatRate` with ``rate_id``; ``KeyError`` when the document does not describe it."""
        for rate in self.vat_rates:
            if rate.id == rate_id:
                return rate
        raise KeyError(rate_id)


# --------------------------------------------------------------------------------- setup / mappings


class JournalSettings(_Model):
    """Journal codes chosen at setup, one per document type (seed 000, "Integration details")."""

    outgoing_invoices: str | None = None
    outgoing_credit_notes: str | None = None
    incoming_invoices: str | None = None
    incoming_credit_notes: str | None = None

    def for_document(self, kind: DocumentKind, direction: Direction) -> str | None:
        """The journal code configured for this kind of document, or ``None``."""
        key = f"{direction.value}_{'invoices' if kind is DocumentKind.INVOICE else 'credit_notes'}"
        return getattr(self, key)


class IntegrationSettings(_Model):
    """Everything an admin set up for one company entity's integration (seed 000, the setup wizard).

    - ``start_date``: documents dated before it are not synced.
    - ``vat_codes``: host VAT rate id -> tool VAT code ("Link VAT codes").
    - ``ledger_accounts``: host VAT rate id -> tool GL account code ("Set ledger accounts"), used for lines
      that carry no ledger account of their own.
    - ``discount_ledger_accounts``: host VAT rate id -> GL account code for document discounts, with the
      key ``"*"`` as the account for any rate ("Accounts for discounts").
    - ``auto_sync``: the nightly sync is on.

    The purchase side (incoming Peppol documents) has its own links, because a tool's purchase VAT codes
    and cost accounts differ from its sales ones: ``purchase_vat_codes`` (host VAT rate id -> purchase VAT
    code), ``expense_ledger_accounts`` (host VAT rate id -> cost account), and
    ``purchase_discount_ledger_accounts`` (discounts received; ``"*"`` for any rate).
    """

    tool: Tool
    start_date: date
    journals: JournalSettings = JournalSettings()
    vat_codes: dict[str, str] = Field(default_factory=dict)
    ledger_accounts: dict[str, str] = Field(default_factory=dict)
    discount_ledger_accounts: dict[str, str] = Field(default_factory=dict)
    purchase_vat_codes: dict[str, str] = Field(default_factory=dict)
    expense_ledger_accounts: dict[str, str] = Field(default_factory=dict)
    purchase_discount_ledger_accounts: dict[str, str] = Field(default_factory=dict)
    auto_sync: bool = False

    def links_for(self, direction: Direction) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """(VAT codes, ledger accounts, discount accounts) for sales (outgoing) or purchases (incoming)."""
        if direction is Direction.INCOMING:
            return self.purchase_vat_codes, self.expense_ledger_accounts, self.purchase_discount_ledger_accounts
        return self.vat_codes, self.ledger_accounts, self.discount_ledger_accounts


# ------------------------------------------------------------------------------------ tool metadata


class GLAccount(_Model):
    """A ledger (GL) account of the tool. ``code`` is what bookings reference; ``id`` the tool's key."""

    code: str
    description: str = ""
    id: str | None = None
    blocked: bool = False
    balance_type: str | None = None  # Exact: B balance sheet / W profit & loss


class Journal(_Model):
    """A journal of the tool, with ``type`` normalised to sales / sales_credit / purchase /
    purchase_credit / other (Exact 20/21/22/23, Octopus V/A)."""

    code: str
    description: str = ""
    type: str
    blocked: bool = False


class VatCode(_Model):
    """A VAT code of the tool. ``percentage`` in percent; ``usage`` is ``sales``, ``purchase`` or ``both``."""

    code: str
    description: str = ""
    percentage: Decimal
    usage: str = "both"
    blocked: bool = False

    _v = field_validator("percentage", mode="before")(_money)


class BookYear(_Model):
    """A financial (book) year of the tool: entries can be booked on dates from ``start`` to ``end``
    unless it is ``closed``."""

    start: date
    end: date
    closed: bool = False


class ExchangeRate(_Model):
    """One row of the tool's exchange-rate table: from ``start`` on, 1 unit of ``currency`` is ``rate``
    units of the administration's (company) currency. Exact Online: ``financial/ExchangeRates``
    (``SourceCurrency``, ``StartDate``, ``Rate``); Octopus: ``GET /currencies``. A rate holds until the
    next row of the same currency starts."""

    currency: str
    start: date
    rate: Decimal

    _v = field_validator("rate", mode="before")(_money)


class ToolMetadata(_Model):
    """What the ledger-accounts component fetches from the tool and caches for the run's batches.

    ``book_years`` empty = the tool didn't say (no date check before posting). ``exchange_rates`` is the
    tool's rate table when the adapter could read it (``exchange_rates_read``); when it could not (Yuki
    has no operation that lists rates) the tool applies its own table when the entry is posted."""

    book_years: tuple[BookYear, ...] = ()
    gl_accounts: tuple[GLAccount, ...] = ()
    journals: tuple[Journal, ...] = ()
    vat_codes: tuple[VatCode, ...] = ()
    currencies: tuple[str, ...] = ()
    company_currency: str = "EUR"
    exchange_rates: tuple[ExchangeRate, ...] = ()
    exchange_rates_read: bool = False
    #: Whether the tool's entries take a rate (Yuki's invoice imports don't: it applies its own table).
    exchange_rate_accepted: bool = True
    #: When set, ``exchange_rates`` holds the rows from this date on only (a long table is kept short for
    #: the stored metadata): a document dated before it gets the tool's own rate, as if the table was unread.
    exchange_rates_from: date | None = None
    #: Tool-specific reference rows the adapter wants back in later batches through its ``use_metadata``
    #: (Octopus: its ``/bookyears`` rows with their periods); opaque to the engine, JSON-serialisable.
    tool_rows: dict[str, Any] = Field(default_factory=dict)

    def gl_account(self, code: str) -> GLAccount | None:
        return next((a for a in self.gl_accounts if a.code == code), None)

    def journal(self, code: str) -> Journal | None:
        return next((j for j in self.journals if j.code == code), None)

    def vat_code(self, code: str) -> VatCode | None:
        return next((v for v in self.vat_codes if v.code == code), None)


# ------------------------------------------------------------------------------------------ booking


class BookingLine(_Model):
    """One line of a sales / purchase entry: GL account, VAT code, base and VAT amount.

    Amounts in the document currency and the **document's own sign** (the adapter applies the tool's
    sign convention), already rounded to the tool's precision.
    """

    gl_account: str
    vat_code: str
    vat_percentage: Decimal
    net_amount: Decimal
    vat_amount: Decimal
    description: str = ""


class BookingEntry(_Model):
    """A sales or purchase entry, ready for an adapter to post.

    ``reference`` is the document number (BT-1) the tool stores as its external reference (Exact
    ``YourRef``, Yuki ``Reference``); ``relation_id`` is the tool's id of the customer / supplier.
    ``net``, ``vat``, ``gross`` are the entry totals in the document's sign; ``gross == net + vat`` and
    the lines sum to them exactly (checked by :func:`connector.booking.build_entry`). ``warnings`` are
    what the entry books as the document says but a user should look at (e.g. a line whose quantity and
    amount have opposite signs); the sync shows them as the document's flag. ``exchange_rate`` (units of
    company currency per unit of ``currency``) is the rate :func:`connector.exchange.decide_rate` chose;
    ``None`` = company currency, or the tool applies its own table (never an assumed 1).
    """

    host_id: str
    kind: DocumentKind
    direction: Direction
    journal: str
    relation_id: str
    reference: str
    entry_date: date
    due_date: date | None = None
    currency: str
    exchange_rate: Decimal | None = None
    description: str = ""
    payment_reference: str | None = None
    lines: tuple[BookingLine, ...]
    net: Decimal
    vat: Decimal
    gross: Decimal
    warnings: tuple[str, ...] = ()


class BookingResult(_Model):
    """What the tool answered for one posted entry: its booking number and its own id of the entry."""

    host_id: str
    booking_number: str
    entry_id: str


class BookingRejected(_Model):
    """A tool refused one entry (a per-document failure: the document is skipped, the run goes on)."""

    host_id: str
    reason: str
    hint: str = ""


class BookedEntry(_Model):
    """An entry as read back from the tool, amounts in the document currency and document sign.

    ``company_currency`` / ``company_net`` / ``company_vat`` / ``company_gross`` are the amounts the tool
    holds in the administration's own currency (same sign convention), and ``exchange_rate`` the rate the
    tool holds on the entry (1 unit of ``currency`` = ``exchange_rate`` units of ``company_currency``);
    ``None`` when the tool did not say."""

    entry_id: str
    booking_number: str
    reference: str
    currency: str
    net: Decimal
    vat: Decimal
    gross: Decimal
    lines: tuple[BookingLine, ...] = ()
    company_currency: str | None = None
    company_net: Decimal | None = None
    company_vat: Decimal | None = None
    company_gross: Decimal | None = None
    exchange_rate: Decimal | None = None


class Skip(_Model):
    """Why one document or relation was skipped, with a fix hint and the host object to open."""

    reason: str
    hint: str = ""
    subject_type: str | None = None  # invoice, creditNote, company, contact
    subject_id: str | None = None


class BookedRef(_Model):
    """A booking the connector made, as the payment-status read needs it."""

    host_id: str
    kind: DocumentKind
    direction: Direction
    entry_id: str
    booking_number: str
    reference: str


class PaymentState(_Model):
    """Whether the tool has a booking paid (reconciled), and what is still open (document sign)."""

    entry_id: str
    paid: bool
    open_amount: Decimal
    paid_on: date | None = None

    _v = field_validator("open_amount", mode="before")(_money)


class PaymentInfo(_Model):
    """A payment the host product has on an outgoing invoice it has as paid in full, as the paid status
    host -> tool step (:mod:`connector.sync.paid_to_tool`) hands it to an adapter's
    ``register_payments`` (seeds 001, 004: paid in the host -> paid in Octopus / Yuki).

    ``amount`` is what the host has as paid (positive, ``Decimal``, document currency ``currency``);
    ``paid_on`` the date of the (last) payment, host ``paid_at`` (host-api.md §4.1). The invoice is
    paid **in full** in the host: an adapter settles the tool's whole open item, ``amount`` is
    information (the two differ only when the tool's entry was edited there).
    """

    amount: Decimal
    paid_on: date
    currency: str

    _v = field_validator("amount", mode="before")(_money)
