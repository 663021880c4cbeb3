"""Property-based fuzz of the API's OpenAPI document with schemathesis, against the API served locally.

The API runs as in the cloud shape: HTTP -> :class:`connector.local.api_server.ApiGatewayBridge` (API
Gateway REST proxy events) -> the real ``ApiFunction`` handler of a moto :class:`LocalStack`, with an
admin token. The schema is the document generated from the code (``docs/openapi.json``, also what the
local server serves at ``/openapi.json``); it is loaded at import with ``schemathesis.openapi.from_dict``
because the lazy ``schemathesis.pytest.from_fixture`` of schemathesis 4.32.5 breaks on pytest 9.2
(``Function._nodeid``). Every operation gets at most ``MAX_EXAMPLES`` generated cases (valid and
invalid inputs, fixed seed); each answer must not be a 5xx and must match the documented schema for its
status (``not_a_server_error``, ``response_schema_conformance``).

Path ids are pinned to seeded data (a connected entity with cached tool data, a finished run with a
skipped document, a notification) so the fuzz reaches the setup logic, not only the 404 branch; the tool
is a fake (no network) that accepts any credentials.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import boto3
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from connector import adapters, runtime
from connector.api import setup as api_setup
from connector.api.auth import issue
from connector.local.api_server import ApiGatewayBridge, openapi_document
from connector.local.stack import LocalStack
from connector.models import GLAccount, IntegrationSettings, Journal, JournalSettings, ToolMetadata, VatCode
from connector.sandbox.server import LoopbackServer
from connector.stores.dynamodb import Stores
from connector.stores.secrets import put_secret
from connector.sync import engine
from tests.fakes import FakeHost, FakeTool

SECRET = "fuzz-jwt-secret-of-at-least-32-bytes!!"  # noqa: S105
MAX_EXAMPLES = 25

METADATA = ToolMetadata(
    gl_accounts=(GLAccount(code="700000", description="Revenue"), GLAccount(code="708000", description="Discounts"), GLAccount(code="999999", blocked=True)),
    journals=(Journal(code="70", type="sales"), Journal(code="71", type="sales_credit"), Journal(code="60", type="purchase"), Journal(code="61", type="purchase_credit")),
    vat_codes=(VatCode(code="21", percentage=Decimal("21"), usage="sales"), VatCode(code="0", percentage=Decimal("0"))),
)


class _AnyCredentialsTool(FakeTool):
    def fetch_metadata(self) -> ToolMetadata:
        return METADATA


def _fake_exchange(base_url, app, code, redirect_uri, *, transport=None):
    return {"access_token": "a", "refresh_token": "r", "expires_at": time.time() + 600}


@pytest.fixture(scope="module")
def served_api():
    """The API on loopback over a seeded local stack; yields (base URL, admin token)."""
    with pytest.MonkeyPatch.context() as patch, LocalStack() as stack:
        patch.setattr(adapters, "create_adapter", lambda ctx: _AnyCredentialsTool())
        patch.setattr(api_setup, "exchange_exact_code", _fake_exchange)
        put_secret(stack.secrets, "connector-prod/app/jwt", {"secret": SECRET})
        put_secret(stack.secrets, "connector-prod/app/exact", {"client_id": "c", "client_secret": "s"})
        stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
        svc = engine.Services(stores=stores, adapter_for=lambda e: FakeTool(), host_for=lambda e: FakeHost([]), start_execution=lambda run_id: None)
        runtime.use(svc)
        settings = IntegrationSettings(tool="exact", start_date=date(2025, 1, 1), journals=JournalSettings(outgoing_invoices="70", outgoing_credit_notes="71"))
        stores.put_entity("acc-1", "ent-1", name="Fuzz BV", tool="exact", status="Connected", settings=settings, connection={"division": 1})
        stores.put_metadata("acc-1", "ent-1", METADATA)
        stores.create_run(run_id="run-1", account_id="acc-1", entity_id="ent-1", tool="exact", trigger="manual", started_by="u-admin")
        stores.put_results("run-1", "outgoing_invoices", [{"id": "d1", "number": "2025/1", "outcome": "skipped", "reason": "no VAT code", "hint": "link it", "subject_type": "invoice", "subject_id": "d1"}], part="batch-00000")
        stores.notifications.put_item(
            Item={"pk": "USER#acc-1#u-admin", "sk": "2025-03-10T10:00:00.000+00:00#note-1", "id": "note-1", "title": "Sync finished", "body": "1 skipped",
                  "run_id": "run-1", "link": "https://host.example/runs/run-1", "read": False, "created_at": "2025-03-10T10:00:00.000+00:00"}
        )
        token = issue(SECRET, account_id="acc-1", user_id="u-admin", rights=["admin", "settings", "invoices"], email="admin@example.com")
        bridge = ApiGatewayBridge(stack.dispatcher.handler_for("ApiFunction"), openapi=openapi_document)
        with LoopbackServer(bridge) as server:
            yield server.url, token


#: The document generated from the code (what ``/openapi.json`` serves and ``docs/openapi.json`` holds);
#: path ids pinned to the seeded entity, run and notification.
schema = schemathesis.openapi.from_dict(
    openapi_document(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20250301,
            "parameters": {"entity_id": "ent-1", "run_id": "run-1", "notification_id": "note-1"},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        }
    ),
)



CHECKS = [not_a_server_error, response_schema_conformance]


@schema.exclude(method="DELETE").parametrize()
def test_no_server_error_and_every_answer_matches_the_schema(case, served_api):
    url, token = served_api
    case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@schema.include(method="DELETE").parametrize()
def test_deleting_last_no_server_error_and_answers_match_the_schema(case, served_api):
    """Deletion runs after every other operation, so those meet the seeded entity."""
    url, token = served_api
    case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
