"""The setup wizard's logic (seed 000, "Set up an integration"), free of Lambda and HTTP framework code.

Every function takes a :class:`SetupContext` and the caller's ``account_id``; every read and write is
scoped to that account (an entity of another account is simply not found: :class:`~connector.api.
errors.NotFound`). Rights are checked by the handler before calling in.

Status transitions (seed 000, the Accounting tab):

- ``connect``: the entity is written as **Connecting**; the credentials are tried against the tool
  (Exact: the authorization code is exchanged for tokens first) by fetching its ledger accounts,
  journals and VAT codes; on success the credentials go to Secrets Manager, the metadata to the cache and
  the status becomes **Configuration needed** (or stays **Connected** for a reconnect of the same
  administration whose setup is complete). On failure nothing is kept: a new entity disappears, a
  reconnected one gets its previous record back.
- ``set_details``: **Connected** once the start date and the journals for outgoing invoices and outgoing
  credit notes are set (incoming ones optional), else **Configuration needed**.
- ``delete_integration``: the entity, its secret, metadata cache, setup options and relation mappings go;
  booking records stay (nothing is ever booked twice).

At most :data:`MAX_CONNECTED_ENTITIES` company entities per account have an integration (seed 000: the
Booster "covers up to 4 company entities"); connecting a 5th is a 409.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from connector import adapters
from connector.adapters import AdapterContext
from connector.api.errors import Conflict, Invalid, NotFound, ToolUnavailable
from connector.api.schemas import (
    CONNECTION_FIELDS,
    ConnectBody,
    ConnectionView,
    DetailsRequest,
    DiscountAccount,
    DiscountAccountsRequest,
    EntityView,
    ExactConnect,
    IntegrationStatus,
    IntegrationView,
    JournalList,
    JournalPurpose,
    JournalsView,
    JournalView,
    LedgerAccountLink,
    LedgerAccountLinksRequest,
    LedgerAccountList,
    LedgerAccountView,
    OctopusConnect,
    VatCodeLink,
    VatCodeLinksRequest,
    VatCodeList,
    VatCodeView,
    YukiConnect,
)
from connector.clock import get_clock
from connector.config import Config
from connector.models import IntegrationSettings, JournalSettings, Tool, ToolMetadata
from connector.ports import AdapterError, CredentialsChanged
from connector.stores.dynamodb import EntityRecord, Stores
from connector.stores.memory import MemoryCredentialStore
from connector.stores.secrets import put_secret

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MAX_CONNECTED_ENTITIES = 4
TOOL_LABELS = {"exact": "Exact Online", "octopus": "Octopus", "yuki": "Yuki"}

#: Journal types (``models.Journal.type``, normalised by the adapters) accepted per purpose (seed 000:
#: "We filter on the accepted types (incoming/outgoing) in your accounting tool").
ACCEPTED_JOURNAL_TYPES: dict[JournalPurpose, frozenset[str]] = {
    JournalPurpose.OUTGOING_INVOICES: frozenset({"sales"}),
    JournalPurpose.OUTGOING_CREDIT_NOTES: frozenset({"sales", "sales_credit"}),
    JournalPurpose.INCOMING_INVOICES: frozenset({"purchase"}),
    JournalPurpose.INCOMING_CREDIT_NOTES: frozenset({"purchase", "purchase_credit"}),
}
#: What the status Connected needs (field names as the API reports them in ``missing``).
REQUIRED_FOR_CONNECTED = ("start_date", "journals.outgoing_invoices", "journals.outgoing_credit_notes")

_STATUSES = frozenset(s.value for s in IntegrationStatus)

#: The credential field named in a 422 when the tool refuses the credentials, per tool.
CREDENTIAL_FIELD = {"exact": "code", "octopus": "password", "yuki": "access_key"}

@dataclass
class SetupContext:
    """What the setup functions need: the stores, a boto3 Secrets Manager client, the configuration
    (secret names, tool base URLs) and, optionally, the ``http`` transport the Exact code exchange uses
    (tests: ``httpx.WSGITransport`` of the Exact sandbox).

    The tool adapter is built with :func:`connector.adapters.create_adapter` looked up at call time and
    the Exact code exchanged with :func:`exchange_exact_code` (tests monkeypatch either).

    ``host_for(entity)`` gives the host product's client of a company entity (``Services.host_for``):
    links by VAT rate are checked against its ``tax_rates()`` (``taxRates.list``). ``None``, or a client
    without ``tax_rates``: the rate ids are not checked."""

    stores: Stores
    secrets: Any
    config: Config
    http_transport: httpx.BaseTransport | None = None
    host_for: Callable[[EntityRecord], Any] | None = None


class CredentialRefused(Exception):
    """The tool refused a credential at connect time: ``field`` names it (never its value)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


# ------------------------------------------------------------------------------------------ reading


def require_entity(ctx: SetupContext, account_id: str, entity_id: str) -> EntityRecord:
    """The caller's account's entity, or :class:`NotFound` (also for another account's id)."""
    entity = ctx.stores.get_entity(account_id, entity_id)
    if entity is None or entity.tool is None:
        raise NotFound(f"company entity {entity_id} has no integration in this account")
    return entity


def entity_view(ctx: SetupContext, entity: EntityRecord) -> EntityView:
    """The entity as :class:`EntityView` (with the running sync's id, if any)."""
    return EntityView(
        entity_id=entity.entity_id,
        name=entity.name,
        tool=Tool(entity.tool or "exact"),
        status=IntegrationStatus(entity.status) if entity.status in _STATUSES else IntegrationStatus.CONFIGURATION_NEEDED,
        auto_sync=bool(entity.settings and entity.settings.auto_sync),
        running_sync_id=ctx.stores.lock_holder(entity.account_id, entity.entity_id),
    )


def list_entities(ctx: SetupContext, account_id: str) -> list[EntityView]:
    """The account's entities with an integration, by name."""
    entities = [e for e in ctx.stores.list_entities(account_id) if e.tool]
    return [entity_view(ctx, e) for e in sorted(entities, key=lambda e: (e.name.lower(), e.entity_id))]


def missing_for_connected(settings: IntegrationSettings | None) -> list[str]:
    """What the status Connected still needs (:data:`REQUIRED_FOR_CONNECTED`)."""
    if settings is None:
        return list(REQUIRED_FOR_CONNECTED)
    missing = []
    if not settings.journals.outgoing_invoices:
        missing.append("journals.outgoing_invoices")
    if not settings.journals.outgoing_credit_notes:
        missing.append("journals.outgoing_credit_notes")
    return missing


def status_for(settings: IntegrationSettings | None) -> IntegrationStatus:
    """Connected when nothing is missing, else Configuration needed."""
    return IntegrationStatus.CONFIGURATION_NEEDED if missing_for_connected(settings) else IntegrationStatus.CONNECTED


def integration_view(ctx: SetupContext, entity: EntityRecord) -> IntegrationView:
    """Everything the integration's settings pages show (no credential)."""
    settings = entity.settings
    options = ctx.stores.get_setup_options(entity.account_id, entity.entity_id)
    record = ctx.stores.get_metadata_record(entity.account_id, entity.entity_id)
    conn = {k: entity.connection.get(k) for k in ("division", "dossier_id", "administration_id", "domain_id") if entity.connection.get(k) is not None}
    journals = settings.journals if settings else JournalSettings()
    return IntegrationView(
        entity_id=entity.entity_id,
        name=entity.name,
        tool=Tool(entity.tool or "exact"),
        status=entity_view(ctx, entity).status,
        connection=ConnectionView(**conn),
        start_date=settings.start_date if settings else None,
        journals=JournalsView(**journals.model_dump()),
        auto_sync=bool(settings and settings.auto_sync),
        discount_accounts=[DiscountAccount(vat_rate_id=k, ledger_account=v) for k, v in sorted((settings.discount_ledger_accounts if settings else {}).items())],
        vat_code_links=[VatCodeLink(vat_rate_id=k, vat_code=v) for k, v in sorted((settings.vat_codes if settings else {}).items())],
        ledger_account_links=[LedgerAccountLink(vat_rate_id=k, ledger_account=v) for k, v in sorted((settings.ledger_accounts if settings else {}).items())],
        purchase_discount_accounts=[DiscountAccount(vat_rate_id=k, ledger_account=v) for k, v in sorted((settings.purchase_discount_ledger_accounts if settings else {}).items())],
        purchase_vat_code_links=[VatCodeLink(vat_rate_id=k, vat_code=v) for k, v in sorted((settings.purchase_vat_codes if settings else {}).items())],
        expense_ledger_account_links=[LedgerAccountLink(vat_rate_id=k, ledger_account=v) for k, v in sorted((settings.expense_ledger_accounts if settings else {}).items())],
        fill_existing_lines=bool(options.get("fill_existing_lines", False)),
        missing=missing_for_connected(settings),
        metadata_fetched_at=record[1] if record else None,
    )


def _metadata(ctx: SetupContext, entity: EntityRecord) -> tuple[ToolMetadata, str | None]:
    record = ctx.stores.get_metadata_record(entity.account_id, entity.entity_id)
    if record is None:
        raise Conflict("the accounting tool's data has not been fetched yet: connect the integration again or run a sync")
    return record


def ledger_accounts(ctx: SetupContext, entity: EntityRecord) -> LedgerAccountList:
    """The tool's ledger accounts from the cache, by code."""
    metadata, fetched = _metadata(ctx, entity)
    items = [LedgerAccountView(code=a.code, description=a.description, blocked=a.blocked, balance_type=a.balance_type) for a in sorted(metadata.gl_accounts, key=lambda a: a.code)]
    return LedgerAccountList(fetched_at=fetched, items=items)


def accepted_purposes(journal_type: str) -> list[JournalPurpose]:
    """The purposes a journal of ``journal_type`` may be chosen for (:data:`ACCEPTED_JOURNAL_TYPES`)."""
    return [p for p, types in ACCEPTED_JOURNAL_TYPES.items() if journal_type in types]


def journals(ctx: SetupContext, entity: EntityRecord, purpose: JournalPurpose | None = None) -> JournalList:
    """The tool's journals from the cache, by code; with ``purpose``, only the unblocked ones accepted for it."""
    metadata, fetched = _metadata(ctx, entity)
    items = [
        JournalView(code=j.code, description=j.description, type=j.type, blocked=j.blocked, accepted_for=accepted_purposes(j.type))
        for j in sorted(metadata.journals, key=lambda j: j.code)
        if purpose is None or (purpose in accepted_purposes(j.type) and not j.blocked)
    ]
    return JournalList(fetched_at=fetched, items=items)


def vat_codes(ctx: SetupContext, entity: EntityRecord) -> VatCodeList:
    """The tool's VAT codes from the cache, by code."""
    metadata, fetched = _metadata(ctx, entity)
    items = [VatCodeView(code=v.code, description=v.description, percentage=str(v.percentage), usage=v.usage, blocked=v.blocked) for v in sorted(metadata.vat_codes, key=lambda v: v.code)]
    return VatCodeList(fetched_at=fetched, items=items)


# ------------------------------------------------------------------------------------------ connect


def connect(ctx: SetupContext, account_id: str, entity_id: str, request: ConnectBody, *, admin: tuple[str, str | None] | None = None) -> EntityRecord:
    """Connect (or reconnect) ``entity_id`` to the tool in ``request``; returns the stored entity.

    Raises :class:`Conflict` for a 5th entity or while a sync of the entity runs (with its ``run_id``),
    :class:`Invalid` naming the credential the tool refused, :class:`ToolUnavailable` when the tool
    failed otherwise. See the module docstring for the status transitions. ``admin`` (user id, e-mail) is
    remembered as the person to tell when the connection later dies (keep-alive)."""
    stores = ctx.stores
    previous = stores.get_entity(account_id, entity_id)
    if previous is not None and previous.tool:
        running = stores.lock_holder(account_id, entity_id)
        if running:
            raise Conflict("a sync of this company entity is running; connect again when it has finished", run_id=running)
    else:
        others = [e for e in stores.list_entities(account_id) if e.tool and e.entity_id != entity_id]
        if len(others) >= MAX_CONNECTED_ENTITIES:
            raise Conflict(
                f"this account already has {len(others)} connected company entities, the most the Accounting connector covers "
                f"({MAX_CONNECTED_ENTITIES}); delete the integration of another company entity first"
            )
    tool = request.tool
    connection = {k: getattr(request, k) for k in CONNECTION_FIELDS[tool] if getattr(request, k) is not None}
    same_administration = previous is not None and previous.tool == tool and previous.connection == connection
    kept = previous.settings if same_administration and previous is not None else None
    stores.put_entity(account_id, entity_id, name=request.name, tool=tool, status=IntegrationStatus.CONNECTING.value, settings=kept, connection=connection)
    secrets = _secret_values(request)
    try:
        credentials = MemoryCredentialStore(_initial_credentials(ctx, request))
        metadata = _probe(ctx, tool, connection, credentials)
    except CredentialRefused as refused:
        _restore(stores, account_id, entity_id, previous)
        raise Invalid([(refused.field, _scrub(refused.reason, secrets))], message=f"{TOOL_LABELS[tool]} refused the connection") from None
    except CredentialsChanged as refused:
        _restore(stores, account_id, entity_id, previous)
        field = CREDENTIAL_FIELD[tool]
        reason = f"{TOOL_LABELS[tool]} refused the credentials: {_scrub(str(refused), secrets)}"
        raise Invalid([(field, reason)], message=f"{TOOL_LABELS[tool]} refused the connection") from None
    except AdapterError as failure:
        _restore(stores, account_id, entity_id, previous)
        raise ToolUnavailable(f"{TOOL_LABELS[tool]} could not be reached or failed: {_scrub(str(failure), secrets)}") from None
    except BaseException:
        _restore(stores, account_id, entity_id, previous)
        raise
    put_secret(ctx.secrets, ctx.config.secret_id(account_id, entity_id, tool), credentials.load())
    if previous is not None and previous.tool and previous.tool != tool:
        _delete_secret(ctx, ctx.config.secret_id(account_id, entity_id, previous.tool))
    stores.put_metadata(account_id, entity_id, metadata)
    if previous is not None and not same_administration:
        stores.delete_relations(account_id, entity_id)  # tool ids of another administration
    stores.put_entity(account_id, entity_id, name=request.name, tool=tool, status=status_for(kept).value, settings=kept, connection=connection)
    if admin is not None:
        stores.put_admin_contact(account_id, entity_id, admin[0], admin[1])
    log.info("connected %s for entity %s", tool, entity_id)
    return require_entity(ctx, account_id, entity_id)


def _secret_values(request: ConnectBody) -> list[str]:
    values = []
    for name in ("code", "password", "access_key"):
        secret = getattr(request, name, None)
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (4+ characters) replaced by ``***``."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _initial_credentials(ctx: SetupContext, request: ConnectBody) -> dict[str, Any]:
    if isinstance(request, ExactConnect):
        app = _app_secret(ctx, "exact")
        base_url = ctx.config.tool_base_urls.get("exact") or "https://start.exactonline.nl"
        return exchange_exact_code(base_url, app, request.code.get_secret_value(), request.redirect_uri, transport=ctx.http_transport)
    if isinstance(request, OctopusConnect):
        return {"user": request.user, "password": request.password.get_secret_value()}
    return {"access_key": request.access_key.get_secret_value()}


def _app_secret(ctx: SetupContext, tool: str) -> dict[str, Any]:
    """The connector's own app credentials for ``tool`` (``<prefix>app/<tool>``)."""
    try:
        value = ctx.secrets.get_secret_value(SecretId=ctx.config.secret_id("app", tool))["SecretString"]
    except ClientError as error:
        raise ToolUnavailable(f"the connector's {TOOL_LABELS[tool]} app credentials are not configured ({error.response['Error']['Code']})") from None
    return json.loads(value)


def exchange_exact_code(base_url: str, app: dict[str, Any], code: str, redirect_uri: str, *, transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Exchange an Exact Online OAuth2 authorization code for tokens (accounting-apis.md §1.2:
    ``POST /api/oauth2/token`` with ``grant_type=authorization_code``). Returns ``{"access_token",
    "refresh_token", "expires_at"}`` (epoch seconds, the connector's clock).

    Raises :class:`CredentialRefused` (field ``code``) when Exact refuses the code (expired, used, or
    issued for another redirect URI), :class:`~connector.ports.AdapterError` when Exact can't be reached."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": str(app["client_id"]),
        "client_secret": str(app["client_secret"]),
    }
    import httpx  # here, not at the top: only connecting Exact needs it, every other API call starts faster

    from connector import limits
    from connector.http import BodyTooLarge, read_response

    try:
        with httpx.Client(base_url=base_url.rstrip("/"), transport=transport, timeout=httpx.Timeout(30.0, connect=10.0)) as client:
            response = read_response(client, "POST", "/api/oauth2/token", limit=limits.MAX_ANSWER_BYTES, data=form,
                                     headers={"Accept": "application/json"})
    except httpx.TransportError as error:
        raise AdapterError(f"Exact Online's token endpoint could not be reached ({type(error).__name__})") from None
    except BodyTooLarge as error:
        raise AdapterError(f"Exact Online's token endpoint answer is too large: {error}") from None
    if response.status_code in (400, 401):
        try:
            error_code = str(response.json().get("error") or "")
        except ValueError:
            error_code = ""
        if error_code == "invalid_client":
            raise AdapterError("Exact Online refused the connector's app credentials (invalid_client)")
        raise CredentialRefused("code", f"Exact Online refused the authorization code ({error_code or f'HTTP {response.status_code}'}): it may have expired, been used already, or been issued for another redirect_uri; authorize again")
    if response.status_code != 200:  # a redirect included: never followed
        raise AdapterError(f"Exact Online's token endpoint answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise AdapterError("Exact Online's token endpoint answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise AdapterError("Exact Online's token endpoint answered without tokens")
    if not body.get("access_token") or not body.get("refresh_token"):
        raise AdapterError("Exact Online's token endpoint answered without tokens")
    return {
        "access_token": body["access_token"],
        "refresh_token": body["refresh_token"],
        "expires_at": get_clock().now() + int(str(body.get("expires_in") or "600")),
    }


def _probe(ctx: SetupContext, tool: str, connection: dict[str, Any], credentials: MemoryCredentialStore) -> ToolMetadata:
    """Fetch the tool's metadata with the new credentials (proves them; fills the cache)."""
    adapter_ctx = AdapterContext(
        tool=tool,
        connection=connection,
        credentials=credentials,
        app_secret=lambda: _app_secret(ctx, tool),
        base_url=ctx.config.tool_base_urls.get(tool),
    )
    adapter = adapters.create_adapter(adapter_ctx)
    try:
        return adapter.fetch_metadata()
    finally:
        close: Callable[[], None] | None = getattr(adapter, "close", None)
        if callable(close):
            close()


def _restore(stores: Stores, account_id: str, entity_id: str, previous: EntityRecord | None) -> None:
    """Undo a failed connect: a new entity disappears, a reconnected one gets its previous record."""
    if previous is None:
        stores.delete_entity(account_id, entity_id)
    else:
        stores.put_entity(account_id, entity_id, name=previous.name, tool=previous.tool, status=previous.status, settings=previous.settings, connection=previous.connection)


def _delete_secret(ctx: SetupContext, secret_id: str) -> None:
    try:
        ctx.secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise


# --------------------------------------------------------------------------------------- the steps


def _settings(entity: EntityRecord) -> IntegrationSettings:
    if entity.settings is None:
        raise Conflict("set the integration details (start date and journals) first")
    return entity.settings


def _save(ctx: SetupContext, entity: EntityRecord, settings: IntegrationSettings | None) -> EntityRecord:
    status = IntegrationStatus.CONNECTING.value if entity.status == IntegrationStatus.CONNECTING.value else status_for(settings).value
    ctx.stores.put_entity(entity.account_id, entity.entity_id, name=entity.name, tool=entity.tool, status=status, settings=settings, connection=entity.connection)
    return require_entity(ctx, entity.account_id, entity.entity_id)


def _not_connecting(entity: EntityRecord) -> None:
    if entity.status == IntegrationStatus.CONNECTING.value:
        raise Conflict("the integration is connecting (or its connection was interrupted): wait a moment, or connect it again")


def set_details(ctx: SetupContext, account_id: str, entity_id: str, request: DetailsRequest) -> EntityRecord:
    """"Integration details": start date and journals, each checked against the tool's journals (it
    exists, is not blocked, and its type is accepted for the purpose: :data:`ACCEPTED_JOURNAL_TYPES`).
    Raises :class:`Invalid` naming each refused journal (``journals.<purpose>``)."""
    entity = require_entity(ctx, account_id, entity_id)
    _not_connecting(entity)
    metadata, _ = _metadata(ctx, entity)
    errors: list[tuple[str, str]] = []
    chosen = request.journals.model_dump()
    for purpose in JournalPurpose:
        code = chosen.get(purpose.value)
        if code is None:
            continue
        journal = metadata.journal(code)
        accepted = ACCEPTED_JOURNAL_TYPES[purpose]
        field = f"journals.{purpose.value}"
        if journal is None:
            options = ", ".join(j.code for j in metadata.journals if j.type in accepted and not j.blocked) or "none"
            errors.append((field, f"no journal with this code in {TOOL_LABELS.get(entity.tool or '', 'the tool')}; accepted journals: {options}"))
        elif journal.type not in accepted:
            errors.append((field, f"journal {journal.code} is a {journal.type} journal; {purpose.value.replace('_', ' ')} need a {' or '.join(sorted(accepted))} journal"))
        elif journal.blocked:
            errors.append((field, f"journal {journal.code} is blocked (closed) in {TOOL_LABELS.get(entity.tool or '', 'the tool')}"))
    if errors:
        raise Invalid(errors)
    base = entity.settings.model_dump() if entity.settings else {"tool": entity.tool}
    settings = IntegrationSettings.model_validate({**base, "start_date": request.start_date, "journals": JournalSettings(**chosen)})
    return _save(ctx, entity, settings)


def set_auto_sync(ctx: SetupContext, account_id: str, entity_id: str, auto_sync: bool) -> EntityRecord:
    """"Synchronisation": the nightly sync on or off. Turning it on needs the status Connected
    (:class:`Invalid` on ``auto_sync`` otherwise; seed 000 advises enabling it only after setup)."""
    entity = require_entity(ctx, account_id, entity_id)
    _not_connecting(entity)
    if auto_sync and status_for(entity.settings) is not IntegrationStatus.CONNECTED:
        missing = ", ".join(missing_for_connected(entity.settings))
        raise Invalid([("auto_sync", f"automatic sync can be turned on once the integration is Connected; still missing: {missing}")])
    if entity.settings is None:
        return entity  # off, and nothing set up yet: nothing to store
    return _save(ctx, entity, entity.settings.model_copy(update={"auto_sync": auto_sync}))


def _check_accounts(metadata: ToolMetadata, codes: list[tuple[str, str]], tool: str) -> list[tuple[str, str]]:
    errors = []
    for field, code in codes:
        account = metadata.gl_account(code)
        if account is None:
            errors.append((field, f"no ledger account with this code in {TOOL_LABELS.get(tool, 'the tool')}"))
        elif account.blocked:
            errors.append((field, f"ledger account {code} is blocked in {TOOL_LABELS.get(tool, 'the tool')}"))
    return errors


def _duplicates(rate_ids: list[str], list_name: str) -> list[tuple[str, str]]:
    seen: set[str] = set()
    errors = []
    for i, rate in enumerate(rate_ids):
        if rate in seen:
            errors.append((f"{list_name}[{i}].vat_rate_id", "this VAT rate is listed more than once"))
        seen.add(rate)
    return errors


def _unknown_rates(ctx: SetupContext, entity: EntityRecord, rate_ids: list[str], list_name: str, *, any_rate: bool = False) -> list[tuple[str, str]]:
    """``{list_name}[i].vat_rate_id`` errors for the rate ids that are not tax rates of the company entity
    in the host product (``taxRates.list`` of its department, host-api.md §8): a link by an id the
    entity doesn't have would never apply. ``any_rate``: ``"*"`` (any rate) is accepted. Nothing is
    checked without a host client that lists tax rates (:class:`SetupContext`). Raises
    :class:`ToolUnavailable` (502) when the host product can't answer."""
    if ctx.host_for is None or not rate_ids:
        return []
    try:
        lister = getattr(ctx.host_for(entity), "tax_rates", None)  # reads the host's credentials: may fail too
        if lister is None:
            return []
        known = set(lister())
        if any(rate not in known for rate in rate_ids) and "refresh" in inspect.signature(lister).parameters:
            known = set(lister(refresh=True))  # a rate added in the host since the client read them
    except Exception as error:  # noqa: BLE001 - any failure to read them is the host's, answered as 502
        log.warning("host tax rates not read", extra={"account_id": entity.account_id, "entity_id": entity.entity_id, "error": type(error).__name__})
        raise ToolUnavailable("the host product's tax rates could not be read to check the VAT rate ids; try again") from None
    listed = ", ".join(sorted(known)) or "none"
    return [
        (f"{list_name}[{i}].vat_rate_id", f"no tax rate with id {rate!r} in this company entity; its tax rates: {listed}")
        for i, rate in enumerate(rate_ids)
        if rate not in known and not (any_rate and rate == "*")
    ]


def set_discount_accounts(ctx: SetupContext, account_id: str, entity_id: str, request: DiscountAccountsRequest) -> EntityRecord:
    """"Accounts for discounts": ledger accounts per host VAT rate (``"*"``: any rate). Each must be an
    unblocked ledger account of the tool (:class:`Invalid` on ``accounts[i].ledger_account``), and each
    rate one of the entity's tax rates in the host product or ``"*"`` (:class:`Invalid` on
    ``accounts[i].vat_rate_id``)."""
    entity = require_entity(ctx, account_id, entity_id)
    _not_connecting(entity)
    settings = _settings(entity)
    metadata, _ = _metadata(ctx, entity)
    errors = _duplicates([a.vat_rate_id for a in request.accounts], "accounts")
    errors += _unknown_rates(ctx, entity, [a.vat_rate_id for a in request.accounts], "accounts", any_rate=True)
    errors += _check_accounts(metadata, [(f"accounts[{i}].ledger_account", a.ledger_account) for i, a in enumerate(request.accounts)], entity.tool or "")
    if errors:
        raise Invalid(errors)
    key = "discount_ledger_accounts" if request.side == "sales" else "purchase_discount_ledger_accounts"
    return _save(ctx, entity, settings.model_copy(update={key: {a.vat_rate_id: a.ledger_account for a in request.accounts}}))


def set_vat_code_links(ctx: SetupContext, account_id: str, entity_id: str, request: VatCodeLinksRequest) -> EntityRecord:
    """"Link VAT codes": host VAT rate -> tool VAT code. Each code must exist in the tool and not be
    blocked (:class:`Invalid` on ``links[i].vat_code``); each rate must be one of the entity's tax
    rates in the host product (:class:`Invalid` on ``links[i].vat_rate_id``)."""
    entity = require_entity(ctx, account_id, entity_id)
    _not_connecting(entity)
    settings = _settings(entity)
    metadata, _ = _metadata(ctx, entity)
    errors = _duplicates([link.vat_rate_id for link in request.links], "links")
    errors += _unknown_rates(ctx, entity, [link.vat_rate_id for link in request.links], "links")
    tool = TOOL_LABELS.get(entity.tool or "", "the tool")
    for i, link in enumerate(request.links):
        code = metadata.vat_code(link.vat_code)
        if code is None:
            known = ", ".join(v.code for v in metadata.vat_codes if not v.blocked) or "none"
            errors.append((f"links[{i}].vat_code", f"no VAT code with this code in {tool}; known codes: {known}"))
        elif code.blocked:
            errors.append((f"links[{i}].vat_code", f"VAT code {code.code} is blocked in {tool}"))
        elif code.usage not in (request.side, "both"):
            errors.append((f"links[{i}].vat_code", f"VAT code {code.code} is a {code.usage} VAT code; these links are for the {request.side} side"))
    if errors:
        raise Invalid(errors)
    key = "vat_codes" if request.side == "sales" else "purchase_vat_codes"
    return _save(ctx, entity, settings.model_copy(update={key: {link.vat_rate_id: link.vat_code for link in request.links}}))


def set_ledger_account_links(ctx: SetupContext, account_id: str, entity_id: str, request: LedgerAccountLinksRequest) -> EntityRecord:
    """"Set ledger accounts": host VAT rate -> tool ledger account, used for every invoice line with that
    rate and no ledger account of its own (``connector/booking.py``). ``fill_existing_lines`` is stored
    with the links: the host product's API has no write for invoice lines, and the link already applies at
    booking time to every line without a ledger account, existing documents included, so the choice is
    honoured by construction. Raises :class:`Invalid` on ``links[i].ledger_account``, and on
    ``links[i].vat_rate_id`` for a rate that is not one of the entity's tax rates in the host product."""
    entity = require_entity(ctx, account_id, entity_id)
    _not_connecting(entity)
    settings = _settings(entity)
    metadata, _ = _metadata(ctx, entity)
    errors = _duplicates([link.vat_rate_id for link in request.links], "links")
    errors += _unknown_rates(ctx, entity, [link.vat_rate_id for link in request.links], "links")
    errors += _check_accounts(metadata, [(f"links[{i}].ledger_account", link.ledger_account) for i, link in enumerate(request.links)], entity.tool or "")
    if errors:
        raise Invalid(errors)
    key = "ledger_accounts" if request.side == "sales" else "expense_ledger_accounts"
    updated = _save(ctx, entity, settings.model_copy(update={key: {link.vat_rate_id: link.ledger_account for link in request.links}}))
    if request.side == "sales":
        ctx.stores.put_setup_options(account_id, entity_id, fill_existing_lines=request.fill_existing_lines)
    return updated


def delete_integration(ctx: SetupContext, account_id: str, entity_id: str) -> None:
    """"Delete integration" (seed 000, "Editing or deleting the integration"): refused with
    :class:`Conflict` (and the ``run_id``) while a sync runs; otherwise the credentials are deleted from
    Secrets Manager and the entity's record, metadata cache, setup options and relation mappings from
    DynamoDB (booking records stay, so nothing is booked twice after a reconnect)."""
    entity = require_entity(ctx, account_id, entity_id)
    running = ctx.stores.lock_holder(account_id, entity_id)
    if running:
        raise Conflict("a sync of this company entity is running; delete the integration when it has finished", run_id=running)
    _delete_secret(ctx, ctx.config.secret_id(account_id, entity_id, entity.tool or ""))
    ctx.stores.delete_entity(account_id, entity_id)
    log.info("deleted the %s integration of entity %s", entity.tool, entity_id)
