"""Request and response models of the connector's REST API (version 1).

The OpenAPI document (``docs/openapi.json``) is generated from these models and the routes of
``functions/api/app.py``; a change here changes the published contract (``tests/integration/
test_api_openapi.py`` fails until the document is regenerated).

Conventions:

- Request models forbid unknown fields (a typo is a 422 naming the field, not silently ignored).
- Ids in paths are 1-64 characters of ``A-Z a-z 0-9 _ -`` (the host product's UUIDs fit).
- Secrets (Octopus password, Yuki access key, Exact authorization code) are ``SecretStr``: write-only in
  the OpenAPI document, never in a response, a log line or an error message.
- Dates are ISO 8601 (``YYYY-MM-DD``); timestamps ISO 8601 with offset; VAT percentages are decimal
  strings (``"21"`` = 21 %).
- Statuses follow seed 000 ("Set up an integration": Connecting, Configuration needed, Connected) and seed
  003 ("Sync statuses": Pending, In progress, Success, Warning, Error; runs also Running, Stalled).
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connector.models import Tool

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)
EARLIEST_START = date(2000, 1, 1)
LATEST_START = date(2099, 12, 31)

Name = Annotated[str, Field(min_length=1, max_length=200, description="Display name (the host product's name of the company entity).")]
HostRateId = Annotated[str, Field(min_length=1, max_length=100, description="The host product's VAT rate id (``taxRates.list``).")]
ToolCode = Annotated[str, Field(min_length=1, max_length=50, description="A code as the accounting tool shows it.")]


class _Request(BaseModel):
    # defer_build: a model's validator is built when a request first needs it, not at import: a cold
    # start serves a route or two, not all twenty (issue 8: handler import time)
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class IntegrationStatus(StrEnum):
    """The integration status the host product shows on the Accounting tab (seed 000)."""

    CONNECTING = "Connecting"
    CONFIGURATION_NEEDED = "Configuration needed"
    CONNECTED = "Connected"


class JournalPurpose(StrEnum):
    """What a journal is chosen for in "Integration details" (seed 000)."""

    OUTGOING_INVOICES = "outgoing_invoices"
    OUTGOING_CREDIT_NOTES = "outgoing_credit_notes"
    INCOMING_INVOICES = "incoming_invoices"
    INCOMING_CREDIT_NOTES = "incoming_credit_notes"


# ------------------------------------------------------------------------------------------ errors


class FieldError(_Response):
    """One thing wrong with the request: ``field`` is the dotted path in the body (``journals.
    outgoing_invoices``, ``links[0].vat_code``) or the path / query parameter's name; ``reason`` says
    what is wrong and never repeats a secret."""

    field: str
    reason: str


class ErrorBody(_Response):
    """Every error answer: a human ``message``; ``errors`` per field for 400 / 422; ``run_id`` of the
    running sync for a 409 caused by it (the host greys the sync button out)."""

    message: str
    errors: list[FieldError] | None = None
    run_id: str | None = None


# ------------------------------------------------------------------------------------- connecting


class ExactConnect(_Request):
    """Connect Exact Online: the OAuth2 authorization ``code`` Exact gave the host product's redirect
    (exchanged here for tokens with the connector's app credentials), the ``redirect_uri`` used to get it
    and the Exact ``division`` (company) to book in."""

    tool: Literal["exact"]
    name: Name
    code: SecretStr = Field(min_length=1, max_length=2000, description="OAuth2 authorization code (single use, minutes valid).")
    redirect_uri: str = Field(min_length=8, max_length=2000, pattern=r"^https?://\S+$", description="The redirect URI the code was issued for.")
    division: int = Field(ge=1, le=2_147_483_647, description="Exact division (company) number.")


class OctopusConnect(_Request):
    """Connect Octopus: the Octopus user with the web-service module, its password and the dossier."""

    tool: Literal["octopus"]
    name: Name
    user: str = Field(min_length=1, max_length=200)
    password: SecretStr = Field(min_length=1, max_length=200)
    dossier_id: int = Field(ge=1, le=2_147_483_647, description="Octopus dossier id (``dossierKey.id``).")


class YukiConnect(_Request):
    """Connect Yuki: a web-service access key and the administration (and optionally the domain)."""

    tool: Literal["yuki"]
    name: Name
    access_key: SecretStr = Field(min_length=1, max_length=200, description="Yuki WebserviceAccessKey.")
    administration_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="Yuki administration GUID.")
    domain_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="Yuki domain GUID, when the key spans domains.")


#: The connect body: one of the three, told apart by ``tool`` (the handler annotates it as the request body).
ConnectBody = ExactConnect | OctopusConnect | YukiConnect

#: Per tool: the request fields that are secrets (go to Secrets Manager) and the ones kept as the
#: entity's non-secret ``connection``.
CONNECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "exact": ("division",),
    "octopus": ("dossier_id",),
    "yuki": ("administration_id", "domain_id"),
}


# --------------------------------------------------------------------------------------- settings


class JournalChoice(_Request):
    """Journal codes per document type; ``null`` leaves one unset. Outgoing invoices and credit notes
    are needed for the status Connected; the incoming ones are optional."""

    outgoing_invoices: ToolCode | None = None
    outgoing_credit_notes: ToolCode | None = None
    incoming_invoices: ToolCode | None = None
    incoming_credit_notes: ToolCode | None = None


class DetailsRequest(_Request):
    """"Integration details": the start date (documents dated before it are not synced) and the journals,
    each checked against the tool's journal types (sales journals for outgoing documents, purchase
    journals for incoming ones; credit notes may use the matching credit-note journal)."""

    start_date: date = Field(description="From this date on documents are synced (2000-01-01 .. 2099-12-31).")
    journals: JournalChoice = JournalChoice()

    @field_validator("start_date")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if not EARLIEST_START <= value <= LATEST_START:
            raise ValueError(f"must be between {EARLIEST_START.isoformat()} and {LATEST_START.isoformat()}")
        return value


class SynchronisationRequest(_Request):
    """"Synchronisation": the nightly automatic sync on or off (only once the integration is Connected)."""

    auto_sync: bool


class VatCodeLink(_Request):
    """A host VAT rate linked to a VAT code of the tool ("Link VAT codes")."""

    vat_rate_id: HostRateId
    vat_code: ToolCode


class LedgerAccountLink(_Request):
    """A host VAT rate linked to a ledger account of the tool ("Set ledger accounts"): the account of
    every invoice line with that rate and no ledger account of its own."""

    vat_rate_id: HostRateId
    ledger_account: ToolCode


class DiscountAccount(_Request):
    """The ledger account for document discounts at one host VAT rate, or at any rate with
    ``vat_rate_id`` ``"*"`` ("Accounts for discounts")."""

    vat_rate_id: HostRateId = Field(description='Host VAT rate id, or "*" for every rate without its own account.')
    ledger_account: ToolCode


class VatCodeLinksRequest(_Request):
    """Replaces all VAT-rate -> VAT-code links of one side (an empty list removes them)."""

    links: list[VatCodeLink] = Field(max_length=200)
    side: Literal["sales", "purchase"] = Field(
        default="sales",
        description="sales: outgoing invoices and credit notes; purchase: incoming Peppol documents (their own VAT codes, cost accounts, discounts received).",
    )


class LedgerAccountLinksRequest(_Request):
    """Replaces all VAT-rate -> ledger-account links.

    ``fill_existing_lines`` is the wizard's slider "Set ledger accounts for existing invoice lines without
    a ledger account". The host product has no write for invoice lines; the connector honours the choice
    where it matters, at booking time: every line without a ledger account is booked on the account
    linked to its VAT rate (``connector/booking.py``), for new and already existing documents alike. The
    flag is stored with the links and returned as given."""

    links: list[LedgerAccountLink] = Field(max_length=200)
    fill_existing_lines: bool = False
    side: Literal["sales", "purchase"] = Field(
        default="sales",
        description="sales: outgoing invoices and credit notes; purchase: incoming Peppol documents (their own VAT codes, cost accounts, discounts received).",
    )


class DiscountAccountsRequest(_Request):
    """Replaces all discount accounts of one side (an empty list removes them)."""

    accounts: list[DiscountAccount] = Field(max_length=200)
    side: Literal["sales", "purchase"] = Field(
        default="sales",
        description="sales: outgoing invoices and credit notes; purchase: incoming Peppol documents (their own VAT codes, cost accounts, discounts received).",
    )


# -------------------------------------------------------------------------------------- responses


class EntityView(_Response):
    """A company entity of the caller's account as the connector knows it (one with an integration).

    ``running_sync_id`` is set while a sync of it runs (the host disables its sync buttons)."""

    entity_id: str
    name: str
    tool: Tool
    status: IntegrationStatus
    auto_sync: bool
    running_sync_id: str | None = None


class EntityList(_Response):
    """The account's company entities with an integration (at most 4)."""

    entities: list[EntityView]
    limit: int = Field(description="How many company entities an account may connect.")


class ConnectionView(_Response):
    """The non-secret connection details (credentials are never returned)."""

    division: int | None = None
    dossier_id: int | None = None
    administration_id: str | None = None
    domain_id: str | None = None


class JournalsView(_Response):
    """The journal codes chosen per document type (``null``: not set)."""

    outgoing_invoices: str | None = None
    outgoing_credit_notes: str | None = None
    incoming_invoices: str | None = None
    incoming_credit_notes: str | None = None


class IntegrationView(_Response):
    """One entity's integration: status, connection, every setup step's current values.

    ``missing`` lists what the status Connected still needs (``start_date``,
    ``journals.outgoing_invoices``, ``journals.outgoing_credit_notes``); empty when Connected.
    ``metadata_fetched_at`` is when the tool's ledger accounts, journals and VAT codes were last
    fetched (at connect, then by each sync)."""

    entity_id: str
    name: str
    tool: Tool
    status: IntegrationStatus
    connection: ConnectionView
    start_date: date | None = None
    journals: JournalsView
    auto_sync: bool
    discount_accounts: list[DiscountAccount]
    vat_code_links: list[VatCodeLink]
    ledger_account_links: list[LedgerAccountLink]
    purchase_discount_accounts: list[DiscountAccount] = Field(default_factory=list, description="Discounts received (incoming documents).")
    purchase_vat_code_links: list[VatCodeLink] = Field(default_factory=list, description="VAT rate -> purchase VAT code (incoming documents).")
    expense_ledger_account_links: list[LedgerAccountLink] = Field(default_factory=list, description="VAT rate -> cost account (incoming documents).")
    fill_existing_lines: bool
    missing: list[str]
    metadata_fetched_at: str | None = None


class LedgerAccountView(_Response):
    """A ledger (GL) account of the tool; ``balance_type`` B (balance sheet) / W (profit and loss) when known."""

    code: str
    description: str
    blocked: bool
    balance_type: str | None = None


class JournalView(_Response):
    """A journal of the tool, its normalised ``type`` and the purposes it may be chosen for."""

    code: str
    description: str
    type: str
    blocked: bool
    accepted_for: list[JournalPurpose]


class VatCodeView(_Response):
    """A VAT code of the tool; ``percentage`` as a decimal string; ``usage`` sales / purchase / both."""

    code: str
    description: str
    percentage: str
    usage: str
    blocked: bool


class LedgerAccountList(_Response):
    """The tool's ledger accounts as cached (refreshed by each sync)."""

    fetched_at: str | None = None
    items: list[LedgerAccountView]


class JournalList(_Response):
    """The tool's journals as cached; with ``purpose`` only the ones accepted for it."""

    fetched_at: str | None = None
    items: list[JournalView]


class VatCodeList(_Response):
    """The tool's VAT codes as cached."""

    fetched_at: str | None = None
    items: list[VatCodeView]


# ------------------------------------------------------------------------------------------ syncs


class SyncStarted(_Response):
    """A sync was started; follow it with ``GET /v1/syncs/{run_id}``."""

    run_id: str


class EntityRun(_Response):
    """A company entity and a run of it."""

    entity_id: str
    run_id: str


class SyncsStarted(_Response):
    """Start for all connected entities: the ones started, and the ones already running (with that
    run's id). Entities whose setup is not complete are not started."""

    started: list[EntityRun]
    busy: list[EntityRun]


class ComponentView(_Response):
    """One component of a run (fixed order, seed 000): status and counts; ``error`` when it failed,
    ``resume_at`` when a spent API budget allows the next try."""

    name: str
    label: str
    status: str
    total: int | None = None
    synced: int = 0
    already_synced: int = 0
    skipped: int = 0
    flagged: int = 0
    error: str | None = None
    resume_at: str | None = None


class AuditDifference(_Response):
    """One way the books don't agree: ``kind`` missing_in_tool / amounts_changed / booking_number_unknown /
    booking_number_differs / company_amounts_differ (a foreign-currency document held at another rate in
    the administration's currency) / shares_entry (a second host document with the booking number of an
    entry the tool holds once), the host document, and how to fix it."""

    kind: str
    document_id: str
    subject_type: str
    number: str | None = None
    booking_number: str | None = None
    detail: str
    hint: str


class AuditTotals(_Response):
    """Count and net / VAT / gross (decimal strings) of one currency on one side."""

    currency: str
    count: int
    net: str
    vat: str
    gross: str


class AuditCompany(_Response):
    """Both sides summed in the administration's own currency over the documents found in the tool: the
    host's amounts converted at the rate each was booked at, and the amounts the tool holds."""

    host: list[AuditTotals]
    tool: list[AuditTotals]


class AuditView(_Response):
    """Books-agree audit after a sync: the documents the host has as synced since the start date
    against the entries the tool holds for their booking numbers; ``host`` / ``tool`` per document
    currency, ``company`` in the administration's currency."""

    documents: int
    agree: int
    host: list[AuditTotals]
    tool: list[AuditTotals]
    company: AuditCompany | None = None
    differences: list[AuditDifference]


class RunView(_Response):
    """A sync run: overall status (Running, Success, Warning, Error, Stalled), trigger (manual,
    nightly, webhook), who started a manual one, and its components in order."""

    run_id: str
    entity_id: str
    tool: str
    trigger: str
    status: str
    started_at: str
    finished_at: str | None = None
    started_by: str | None = None
    error: str | None = None
    dry_run: bool = False
    components: list[ComponentView]
    audit: AuditView | None = None


class SyncHistory(_Response):
    """Runs of the last 7 days, newest first, plus the latest successful run even when older
    (seed 000 "Notifications and troubleshooting")."""

    entity_id: str
    running_sync_id: str | None = None
    runs: list[RunView]


class DocumentDetail(_Response):
    """"View details": a document or relation the run skipped or flagged, why, how to fix it, and the
    host product's object to open (``subject_type`` invoice / creditNote / company / contact and
    ``subject_id``)."""

    component: str
    id: str
    number: str | None = None
    outcome: str
    reason: str | None = None
    hint: str | None = None
    flag: str | None = None
    booking_number: str | None = Field(default=None, description="The tool's booking number of a document that was booked (e.g. a flagged one); null for skipped documents and for relations.")
    subject_type: str | None = None
    subject_id: str | None = None
    proposed: dict[str, Any] | None = Field(default=None, description="Dry run: the entry that would be booked (journal, relation, lines with ledger account, VAT code, base and VAT amounts, totals).")


class RunDetails(_Response):
    """A run with the details of every skipped or flagged document and relation."""

    run: RunView
    details: list[DocumentDetail]


# ------------------------------------------------------------------------------- relation import


class ImportOutcome(StrEnum):
    """What the import did with one relation of the tool (``connector.onboarding``)."""

    LINKED = "linked"
    CREATED = "created"
    AMBIGUOUS = "ambiguous"
    ALREADY_LINKED = "already_linked"
    SKIPPED = "skipped"


class ImportedRelation(_Response):
    """One relation of the tool in the import's result.

    ``host_ids`` are the host product's relations concerned (``host_kinds``: company / contact, same
    order): the one linked, created or already linked, or every candidate of an ambiguous match ("merge
    by hand"). ``tool_codes``: the tool relation's code, plus the other code already on the host relation
    when the tool holds it twice. ``matched_by``: ``vat_number`` or ``name``."""

    action: ImportOutcome
    name: str
    tool_code: str | None = Field(description="The code the host keeps as External ID: Exact account Code, Octopus relation id, Yuki relatiecode.")
    tool_id: str = Field(description="The tool's own key of the relation.")
    tool_codes: list[str]
    vat_number: str | None = None
    matched_by: str | None = None
    host_ids: list[str]
    host_kinds: list[str]
    reason: str


class RelationImport(_Response):
    """The result of importing the tool's customers and suppliers into the host product (seed 001,
    "Import companies from Octopus"): counts and one entry per relation of the tool. A second import
    creates nothing (``already_linked``)."""

    entity_id: str
    tool: Tool
    linked: int = Field(description="Linked to an existing host relation (by VAT number, else by name).")
    created: int = Field(description="Created in the host product, tagged '<tool> Import'.")
    ambiguous: int = Field(description="Nothing changed: several candidates; merge by hand.")
    already_linked: int
    skipped: int = Field(description="Without a code, inactive / blocked, neither customer nor supplier, or refused by the host.")
    details: list[ImportedRelation]


# ---------------------------------------------------------------------------------- notifications


class NotificationView(_Response):
    """An in-app notification of the calling user (a finished manual sync)."""

    id: str
    title: str
    body: str
    run_id: str | None = None
    link: str | None = None
    read: bool
    created_at: str


class NotificationList(_Response):
    """The calling user's notifications, newest first."""

    notifications: list[NotificationView]


def is_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id in a path (:data:`ID_PATTERN`)."""
    return bool(_ID_RE.fullmatch(value))
