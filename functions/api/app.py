"""The connector's REST API, version 1 (API Gateway proxy + Powertools resolver with request validation).

Thin: the bearer token is verified before routing (401, the token never echoed), Powertools validates
the path, query and body against the pydantic models of ``connector.api.schemas`` (422 naming each field
and the reason), the route checks the caller's right (403) and calls the domain functions of
``connector.api.setup`` / ``connector.api.activity``, which scope everything to the caller's account (404
for another account's ids). ``docs/openapi.json`` is generated from this module
(``python -m connector.api.openapi``).

Routes (rights: A admin, S settings, D invoices / expenses / credit notes, * any of them):

====== ========================================================== ===== ==========================
GET    /v1/entities                                               \\*     200
GET    /v1/entities/{entity_id}                                   \\*     200 404
GET    /v1/entities/{entity_id}/integration                       A S   200 404
PUT    /v1/entities/{entity_id}/integration                       A     200 404 409 422 502
DELETE /v1/entities/{entity_id}/integration                       A     204 404 409
PUT    /v1/entities/{entity_id}/integration/details               A     200 404 409 422
PUT    /v1/entities/{entity_id}/integration/synchronisation       A     200 404 409 422
PUT    /v1/entities/{entity_id}/integration/discount-accounts     A     200 404 409 422 502
PUT    /v1/entities/{entity_id}/integration/vat-code-links        A     200 404 409 422 502
PUT    /v1/entities/{entity_id}/integration/ledger-account-links  A     200 404 409 422 502
POST   /v1/entities/{entity_id}/integration/import-relations      A     200 404 409 502
GET    /v1/entities/{entity_id}/tool/ledger-accounts              A S   200 404 409
GET    /v1/entities/{entity_id}/tool/journals                     A S   200 404 409
GET    /v1/entities/{entity_id}/tool/vat-codes                    A S   200 404 409
POST   /v1/entities/{entity_id}/syncs                             A D   202 404 409
GET    /v1/entities/{entity_id}/syncs                             A S D 200 404
POST   /v1/syncs                                                  A D   202
GET    /v1/syncs/{run_id}                                         A S D 200 404
GET    /v1/notifications                                          \\*     200
PUT    /v1/notifications/{notification_id}/read                   \\*     200 404
====== ========================================================== ===== ==========================

Every route also answers 401 (no valid token), 403 (right missing) and 422 (invalid input).
"""

import contextvars
import functools
import json
import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from connector.api import activity, relations, setup
from connector.api.auth import Caller, Unauthorized, verify
from connector.api.errors import ApiError, Forbidden, field_path, validation_reason
from connector.api.schemas import (
    ID_PATTERN,
    ConnectBody,
    DetailsRequest,
    DiscountAccountsRequest,
    EntityList,
    EntityView,
    ErrorBody,
    IntegrationView,
    JournalList,
    JournalPurpose,
    LedgerAccountLinksRequest,
    LedgerAccountList,
    NotificationList,
    NotificationView,
    RelationImport,
    RunDetails,
    SyncHistory,
    SyncsStarted,
    SyncStarted,
    SynchronisationRequest,
    VatCodeLinksRequest,
    VatCodeList,
)
from connector.config import Config
from connector.runtime import services

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)

API_VERSION = "1.0.0"
API_DESCRIPTION = """\
The accounting connector's API for the host product: the setup wizard of an integration per company
entity (connect a tool, integration details, synchronisation, accounts for discounts, VAT-code and
ledger-account links, delete) and everything the host shows about syncs (start, history, "View details",
notifications).

**Auth.** Every call carries `Authorization: Bearer <JWT>` signed by the host product (HS256, audience
`accounting-connector`) with the claims `sub` (user id), `account_id`, `email` and `rights` (`admin`,
`settings`, `invoices`, `expenses`, `credit_notes`). No valid token: 401. Every read and write is scoped
to the token's account; another account's ids answer 404, never 403. Only admins change setup (403
otherwise); admins and users with Settings access read it; anyone with access to invoices, expenses or
credit notes may start a sync and see its outcome.

**Errors.** `{"message", "errors": [{"field", "reason"}], "run_id"}`: 422 names each refused field (body
fields as dotted paths like `journals.outgoing_invoices` or `links[0].vat_code`); 409 carries the running
sync's `run_id` when that is the reason (the host greys its sync button out).

**Statuses.** An integration is `Connecting` while its credentials are tried, `Configuration needed`
until the start date and the journals for outgoing invoices and credit notes are set, then `Connected`.
At most 4 company entities per account can be connected.

**Ledger accounts for existing invoice lines.** `fill_existing_lines` (the wizard's slider "Set ledger
accounts for existing invoice lines without a ledger account") is stored with the VAT-rate to
ledger-account links. The host product's API has no write for invoice lines; the connector applies the
link at booking time to every line that has no ledger account, existing documents included, so the
choice is honoured by construction.

**Credentials** (Exact authorization code, Octopus password, Yuki access key) are kept in AWS Secrets
Manager and never returned or logged. The tools' URLs come from the deployment, not from the API.
"""

def describe_api(resolver: APIGatewayRestResolver) -> None:
    """Give ``resolver`` the OpenAPI document's title, description, tags and bearer security scheme. Only
    the document needs them (``python -m connector.api.openapi`` calls this before generating
    ``docs/openapi.json``), not a request: so a cold start does not import Powertools' OpenAPI models
    (about 100 ms, issue 8), which request validation does not use."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Tag

    resolver.configure_openapi(
        title="Accounting connector API",
        version=API_VERSION,
        description=API_DESCRIPTION,
        tags=[
            Tag(name="entities", description="Company entities of the account with an integration (at most 4)."),
            Tag(name="integration", description="The setup wizard of one company entity's integration."),
            Tag(name="tool data", description="Ledger accounts, journals and VAT codes as fetched from the tool (cached; refreshed by each sync)."),
            Tag(name="syncs", description="Start syncs, sync history and View details."),
            Tag(name="notifications", description="In-app notifications of the calling user."),
        ],
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT", description="A JWT the host product signs (see the description).")},
        security=[{"bearerAuth": []}],
    )


_caller_var: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")

EntityId = Annotated[str, Path(pattern=ID_PATTERN, description="The host product's id of the company entity.")]
RunId = Annotated[str, Path(pattern=ID_PATTERN, description="The sync run's id.")]
NotificationId = Annotated[str, Path(pattern=ID_PATTERN, description="The notification's id.")]

_ERROR_TEXT = {
    401: "No valid bearer token (missing, malformed, forged or expired).",
    403: "The caller's rights don't allow this on its own account.",
    404: "Not found in the caller's account (another account's ids are not found either).",
    409: "Refused by the current state; `run_id` names the running sync when that is the reason.",
    415: "The body is not sent as application/json.",
    422: "Invalid input: `errors` names each field and the reason.",
    502: "The accounting tool could not be reached or failed.",
}


def _responses(success: int, description: str, *errors: int, body: bool = True) -> dict[int, Any]:
    """The OpenAPI responses of a route: the success one (its schema from the return type) and the
    error ones (all :class:`ErrorBody`); 401, 403 and 422 on every route."""
    out: dict[int, Any] = {success: {"description": description} if body else {"description": description, "content": {}}}
    for code in sorted({401, 403, 422, *errors}):
        out[code] = {"description": _ERROR_TEXT[code], "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}}}
    return out


# ----------------------------------------------------------------------------------- plumbing


@functools.cache
def _secrets_client() -> Any:
    import boto3

    return boto3.client("secretsmanager")


@functools.cache
def _jwt_secret() -> str:
    """The secret shared with the host product, read once per container from Secrets Manager."""
    value = _secrets_client().get_secret_value(SecretId=os.environ["JWT_SECRET_ID"])["SecretString"]
    return json.loads(value)["secret"]


def _caller() -> Caller:
    return _caller_var.get()


def _setup() -> setup.SetupContext:
    svc = services()
    return setup.SetupContext(stores=svc.stores, secrets=_secrets_client(), config=Config.from_env(), host_for=svc.host_for)


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise Forbidden(f"your rights don't allow you to {what}")


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@app.exception_handler(ApiError)
def _api_error(error: ApiError) -> Response:
    return _error(error.status, error.body())


def _field_of(error: dict[str, Any], tags: tuple[str, ...]) -> str:
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        return "tool"
    if error.get("type") == "json_invalid":
        return "body"
    return field_path(error.get("loc", ()), tags=tags)


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    tags = ("exact", "octopus", "yuki")
    errors = [
        {"field": _field_of(e, tags), "reason": validation_reason(e)}
        for e in error.errors()
    ]
    unique = list({(e["field"], e["reason"]): e for e in errors}.values())
    fields = ", ".join(dict.fromkeys(e["field"] for e in unique))
    return _error(422, {"message": f"invalid request: {fields}", "errors": unique})


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_body(_: RequestUnsupportedContentType) -> Response:
    return _error(415, {"message": "send the body as application/json", "errors": [{"field": "body", "reason": "the Content-Type must be application/json"}]})


@app.exception_handler(UnicodeDecodeError)
def _undecodable_body(_: UnicodeDecodeError) -> Response:
    return _error(422, {"message": "invalid request: body", "errors": [{"field": "body", "reason": "the body is not UTF-8 encoded JSON"}]})


@app.not_found
def _no_route(_: NotFoundError) -> Response:
    return _error(404, {"message": "no such resource"})


# ------------------------------------------------------------------------------------ entities


@app.get("/v1/entities", tags=["entities"], summary="List the account's company entities", responses=_responses(200, "The entities with an integration."))
def list_entities() -> EntityList:
    """The account's company entities with an integration (any right; the sync buttons need them)."""
    caller = _caller()
    _require(caller.may_sync or caller.may_read_setup, "see the company entities")
    return EntityList(entities=setup.list_entities(_setup(), caller.account_id), limit=setup.MAX_CONNECTED_ENTITIES)


@app.get("/v1/entities/<entity_id>", tags=["entities"], summary="One company entity", responses=_responses(200, "The entity.", 404))
def get_entity(entity_id: EntityId) -> EntityView:
    """One company entity: status, tool, automatic sync, the running sync's id."""
    caller = _caller()
    ctx = _setup()
    entity = setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.may_sync or caller.may_read_setup, "see the company entities")
    return setup.entity_view(ctx, entity)


# --------------------------------------------------------------------------------- integration


@app.get("/v1/entities/<entity_id>/integration", tags=["integration"], summary="The integration's setup", responses=_responses(200, "Status, connection and every setup step.", 404))
def get_integration(entity_id: EntityId) -> IntegrationView:
    """The integration's setup (admins and Settings users)."""
    caller = _caller()
    ctx = _setup()
    entity = setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.may_read_setup, "see the integration's settings")
    return setup.integration_view(ctx, entity)


@app.put(
    "/v1/entities/<entity_id>/integration",
    tags=["integration"],
    summary="Connect a tool",
    description=(
        "Connects (or reconnects) the company entity to Exact Online (an OAuth2 authorization `code` with its "
        "`redirect_uri`, and the `division`), Octopus (`user`, `password`, `dossier_id`) or Yuki (`access_key`, "
        "`administration_id`, optional `domain_id`). The credentials are tried by fetching the tool's ledger accounts, "
        "journals and VAT codes, then kept in AWS Secrets Manager (never returned). Status: Connecting, then "
        "Configuration needed (or Connected for a reconnect of the same administration with a complete setup). "
        "A 5th connected entity in the account is refused (409); a refused credential is a 422 naming the field."
    ),
    responses=_responses(200, "Connected; the integration's setup.", 404, 409, 415, 502),
)
def connect(entity_id: EntityId, body: Annotated[ConnectBody, Body(discriminator="tool", description="The tool and its credentials.")]) -> IntegrationView:
    """Connect a tool (admins): :func:`connector.api.setup.connect`."""
    caller = _caller()
    _require(caller.is_admin, "connect an accounting tool (admins only)")
    ctx = _setup()
    entity = setup.connect(ctx, caller.account_id, entity_id, body, admin=(caller.user_id, caller.email))
    return setup.integration_view(ctx, entity)


@app.delete(
    "/v1/entities/<entity_id>/integration",
    tags=["integration"],
    summary="Delete the integration",
    description="Deletes the credentials, the setup and the cached tool data; refused (409 with `run_id`) while a sync runs.",
    status_code=204,
    responses=_responses(204, "Deleted.", 404, 409, body=False),
)
def delete_integration(entity_id: EntityId) -> Response[None]:
    """Delete the integration (admins): :func:`connector.api.setup.delete_integration`."""
    caller = _caller()
    ctx = _setup()
    setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.is_admin, "delete the integration (admins only)")
    setup.delete_integration(ctx, caller.account_id, entity_id)
    return Response(status_code=204, body="")


def _admin_step(entity_id: str, what: str) -> setup.SetupContext:
    caller = _caller()
    ctx = _setup()
    setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.is_admin, f"change {what} (admins only)")
    return ctx


@app.put(
    "/v1/entities/<entity_id>/integration/details",
    tags=["integration"],
    summary="Integration details: start date and journals",
    description="Each journal must exist in the tool, not be blocked, and be of an accepted type: sales for outgoing invoices, sales or sales credit for outgoing credit notes, purchase (credit) for incoming ones.",
    responses=_responses(200, "The integration's setup.", 404, 409, 415),
)
def set_details(entity_id: EntityId, body: DetailsRequest) -> IntegrationView:
    """Start date and journals (admins): :func:`connector.api.setup.set_details`."""
    ctx = _admin_step(entity_id, "the integration details")
    caller = _caller()
    return setup.integration_view(ctx, setup.set_details(ctx, caller.account_id, entity_id, body))


@app.put(
    "/v1/entities/<entity_id>/integration/synchronisation",
    tags=["integration"],
    summary="Automatic nightly sync on or off",
    description="Turning it on needs the status Connected.",
    responses=_responses(200, "The integration's setup.", 404, 409, 415),
)
def set_synchronisation(entity_id: EntityId, body: SynchronisationRequest) -> IntegrationView:
    """Nightly sync on / off (admins): :func:`connector.api.setup.set_auto_sync`."""
    ctx = _admin_step(entity_id, "the synchronisation")
    caller = _caller()
    return setup.integration_view(ctx, setup.set_auto_sync(ctx, caller.account_id, entity_id, body.auto_sync))


@app.put(
    "/v1/entities/<entity_id>/integration/discount-accounts",
    tags=["integration"],
    summary="Accounts for discounts",
    description='Ledger accounts for document discounts per host VAT rate; `"*"` for any rate. Each rate id must be one of the company entity\'s tax rates in the host product (422 naming the id; 502 when the host product can\'t be read). Needs the details set first (409).',
    responses=_responses(200, "The integration's setup.", 404, 409, 415, 502),
)
def set_discount_accounts(entity_id: EntityId, body: DiscountAccountsRequest) -> IntegrationView:
    """Accounts for discounts (admins): :func:`connector.api.setup.set_discount_accounts`."""
    ctx = _admin_step(entity_id, "the accounts for discounts")
    caller = _caller()
    return setup.integration_view(ctx, setup.set_discount_accounts(ctx, caller.account_id, entity_id, body))


@app.put(
    "/v1/entities/<entity_id>/integration/vat-code-links",
    tags=["integration"],
    summary="Link VAT codes",
    description="Host VAT rate to tool VAT code. Each rate id must be one of the company entity's tax rates in the host product (422 naming the id; 502 when the host product can't be read). Needs the details set first (409).",
    responses=_responses(200, "The integration's setup.", 404, 409, 415, 502),
)
def set_vat_code_links(entity_id: EntityId, body: VatCodeLinksRequest) -> IntegrationView:
    """VAT rate -> VAT code (admins): :func:`connector.api.setup.set_vat_code_links`."""
    ctx = _admin_step(entity_id, "the VAT-code links")
    caller = _caller()
    return setup.integration_view(ctx, setup.set_vat_code_links(ctx, caller.account_id, entity_id, body))


@app.put(
    "/v1/entities/<entity_id>/integration/ledger-account-links",
    tags=["integration"],
    summary="Set ledger accounts per VAT rate",
    description=(
        "Host VAT rate to tool ledger account, used for every invoice line with that rate and no ledger account of its "
        "own. `fill_existing_lines` is stored with the links; the link applies at booking time to every line without "
        "a ledger account, existing documents included, so it is honoured by construction (the host product's API "
        "has no write for invoice lines). Each rate id must be one of the company entity's tax rates in the host "
        "product (422 naming the id; 502 when the host product can't be read). Needs the details set first (409)."
    ),
    responses=_responses(200, "The integration's setup.", 404, 409, 415, 502),
)
def set_ledger_account_links(entity_id: EntityId, body: LedgerAccountLinksRequest) -> IntegrationView:
    """VAT rate -> ledger account (admins): :func:`connector.api.setup.set_ledger_account_links`."""
    ctx = _admin_step(entity_id, "the ledger-account links")
    caller = _caller()
    return setup.integration_view(ctx, setup.set_ledger_account_links(ctx, caller.account_id, entity_id, body))


@app.post(
    "/v1/entities/<entity_id>/integration/import-relations",
    tags=["integration"],
    summary="Import the tool's customers and suppliers",
    description=(
        "Imports the accounting tool's relations (Exact Online accounts, Octopus relations, Yuki contacts) into the host "
        "product before the first sync, so no customer is booked twice (seed 001, 'Import companies from Octopus'). Each "
        "relation is first matched to an existing host company or contact by VAT number (normalised with python-stdnum), "
        "then by name: one match is linked (its External ID becomes the tool's code, nothing else changes); two or more "
        "change nothing and are listed as `ambiguous` (merge by hand, with the ids of both sides); no match creates a "
        "company tagged '<tool> Import'. Running it again creates nothing (`already_linked`). Needs the status "
        "Configuration needed or Connected (409 while Connecting or while a sync runs, with its `run_id`); 502 when the "
        "tool or the host product failed (what was done stays; import again to finish)."
    ),
    responses=_responses(200, "The import's result: counts and one entry per relation of the tool.", 404, 409, 502),
)
def import_relations(entity_id: EntityId) -> RelationImport:
    """Import the tool's relations (admins): :func:`connector.api.relations.import_relations`."""
    caller = _caller()
    ctx = _setup()
    setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.is_admin, "import relations (admins only)")
    return relations.import_relations(ctx, services(), caller.account_id, entity_id)


# ----------------------------------------------------------------------------------- tool data


def _setup_reader(entity_id: str) -> tuple[setup.SetupContext, Any]:
    caller = _caller()
    ctx = _setup()
    entity = setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.may_read_setup, "see the integration's settings")
    return ctx, entity


@app.get("/v1/entities/<entity_id>/tool/ledger-accounts", tags=["tool data"], summary="The tool's ledger accounts", responses=_responses(200, "Cached ledger accounts.", 404, 409))
def tool_ledger_accounts(entity_id: EntityId) -> LedgerAccountList:
    """The tool's ledger accounts, cached (admins and Settings users)."""
    ctx, entity = _setup_reader(entity_id)
    return setup.ledger_accounts(ctx, entity)


@app.get(
    "/v1/entities/<entity_id>/tool/journals",
    tags=["tool data"],
    summary="The tool's journals",
    description="With `purpose`, only the unblocked journals accepted for it (what the wizard offers).",
    responses=_responses(200, "Cached journals.", 404, 409),
)
def tool_journals(entity_id: EntityId, purpose: Annotated[JournalPurpose | None, Query(description="Only journals accepted for this purpose.")] = None) -> JournalList:
    """The tool's journals, cached; ``purpose`` filters what the wizard offers."""
    ctx, entity = _setup_reader(entity_id)
    return setup.journals(ctx, entity, purpose)


@app.get("/v1/entities/<entity_id>/tool/vat-codes", tags=["tool data"], summary="The tool's VAT codes", responses=_responses(200, "Cached VAT codes.", 404, 409))
def tool_vat_codes(entity_id: EntityId) -> VatCodeList:
    """The tool's VAT codes, cached (admins and Settings users)."""
    ctx, entity = _setup_reader(entity_id)
    return setup.vat_codes(ctx, entity)


# --------------------------------------------------------------------------------------- syncs


@app.post(
    "/v1/entities/<entity_id>/syncs",
    tags=["syncs"],
    summary="Start a sync of one company entity",
    description="409 with the running sync's `run_id` while one runs; 409 without it when the setup isn't complete.",
    status_code=202,
    responses=_responses(202, "Started.", 404, 409),
)
def start_sync(
    entity_id: EntityId,
    dry_run: Annotated[bool, Query(description="Run every component up to the write: record per document the entry it would book or why it would skip it; write nothing to the tool or the host product.")] = False,
) -> SyncStarted:
    """Start a manual sync of one entity (202; 409 with the running ``run_id``), or a dry run."""
    caller = _caller()
    ctx = _setup()
    entity = setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.may_sync, "start a sync (it needs access to invoices, expenses or credit notes)")
    run_id = activity.start_sync(services(), entity, user_id=caller.user_id, email=caller.email, dry_run=dry_run)
    return SyncStarted(run_id=run_id)


@app.post(
    "/v1/syncs",
    tags=["syncs"],
    summary="Start a sync of every connected company entity",
    description="`busy` lists the entities whose sync was already running, with that run's id.",
    status_code=202,
    responses=_responses(202, "Started where possible."),
)
def start_all_syncs() -> SyncsStarted:
    """Start a manual sync of every connected entity of the account (202, ``started`` / ``busy``)."""
    caller = _caller()
    _require(caller.may_sync, "start a sync (it needs access to invoices, expenses or credit notes)")
    return activity.start_all(services(), caller.account_id, user_id=caller.user_id, email=caller.email)


@app.get(
    "/v1/entities/<entity_id>/syncs",
    tags=["syncs"],
    summary="Sync history",
    description="Runs of the last 7 days, newest first, plus the latest successful run even when older.",
    responses=_responses(200, "The history.", 404),
)
def sync_history(entity_id: EntityId) -> SyncHistory:
    """The entity's sync history (7 days + the latest success)."""
    caller = _caller()
    ctx = _setup()
    entity = setup.require_entity(ctx, caller.account_id, entity_id)
    _require(caller.may_see_syncs, "see the sync history")
    return activity.history(ctx.stores, entity)


@app.get(
    "/v1/syncs/<run_id>",
    tags=["syncs"],
    summary="One sync with View details",
    description="The run's status and per-component counts, and each skipped or flagged document or relation with its reason, fix hint and the host object to open.",
    responses=_responses(200, "The run and its details.", 404),
)
def get_run(run_id: RunId) -> RunDetails:
    """One run with View details (another account's run: 404)."""
    caller = _caller()
    details = activity.run_details(services().stores, caller.account_id, run_id)
    _require(caller.may_see_syncs, "see a sync's details")
    return details


# ------------------------------------------------------------------------------- notifications


@app.get("/v1/notifications", tags=["notifications"], summary="The calling user's notifications", responses=_responses(200, "Newest first."))
def list_notifications(unread_only: Annotated[bool, Query(description="Only unread ones.")] = False) -> NotificationList:
    """The calling user's notifications."""
    caller = _caller()
    return activity.notifications(services().stores, caller.account_id, caller.user_id, unread_only=unread_only)


@app.put("/v1/notifications/<notification_id>/read", tags=["notifications"], summary="Mark a notification read", responses=_responses(200, "The notification.", 404))
def mark_notification_read(notification_id: NotificationId) -> NotificationView:
    """Mark one of the calling user's notifications read (anyone else's: 404)."""
    caller = _caller()
    return activity.mark_read(services().stores, caller.account_id, caller.user_id, notification_id)


# ------------------------------------------------------------------------------------- handler


def _header(event: dict[str, Any], name: str) -> str | None:
    for source in (event.get("headers") or {}, {k: (v[-1] if v else None) for k, v in (event.get("multiValueHeaders") or {}).items()}):
        for key, value in source.items():
            if key.lower() == name.lower() and value:
                return str(value)
    return None


def _unauthorized(reason: str) -> dict[str, Any]:
    """A 401 answered before routing (like a Lambda authorizer would); the token is never echoed."""
    return {
        "statusCode": 401,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON], "WWW-Authenticate": ['Bearer realm="accounting-connector"']},
        "body": json.dumps({"message": f"unauthorized: {reason}"}),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    """Verify the bearer token (401 without a valid one), then route with the caller in context."""
    try:
        caller = verify(_header(event, "Authorization"), _jwt_secret())
    except Unauthorized as error:
        return _unauthorized(str(error))
    token = _caller_var.set(caller)
    try:
        return app.resolve(event, context)
    finally:
        _caller_var.reset(token)
