"""The setup wizard through the API under moto: entities, connect (Secrets Manager, status transitions),
details, synchronisation, discount accounts, VAT-code and ledger-account links, tool data, delete; bad
input per field (422 naming it), 403 for non-admins, 404 across accounts, the 5th entity (409)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from connector import adapters, runtime
from connector.adapters import AdapterContext
from connector.api import setup as api_setup
from connector.local.stack import LocalStack
from connector.models import GLAccount, Journal, ToolMetadata, VatCode
from connector.ports import AdapterError, CredentialsChanged
from connector.stores.dynamodb import Stores
from connector.stores.secrets import put_secret
from connector.sync import engine
from tests.fakes import FakeHost, FakeTool
from tests.integration.test_api import OCTOPUS, ROUTES, SECRET, call, token

METADATA = ToolMetadata(
    gl_accounts=(
        GLAccount(code="700000", description="Revenue 21%", balance_type="W"),
        GLAccount(code="700006", description="Revenue 6%", balance_type="W"),
        GLAccount(code="708000", description="Discounts", balance_type="W"),
        GLAccount(code="709999", description="Old revenue", blocked=True),
    ),
    journals=(
        Journal(code="70", description="Sales", type="sales"),
        Journal(code="71", description="Sales credit notes", type="sales_credit"),
        Journal(code="60", description="Purchases", type="purchase"),
        Journal(code="61", description="Purchase credit notes", type="purchase_credit"),
        Journal(code="79", description="Closed sales", type="sales", blocked=True),
        Journal(code="90", description="Memorial", type="other"),
    ),
    vat_codes=(VatCode(code="21", description="21%", percentage=Decimal("21"), usage="sales"), VatCode(code="6", percentage=Decimal("6")), VatCode(code="X", percentage=Decimal("0"), blocked=True)),
)
ADMIN = token(rights=["admin"])
DETAILS = {"start_date": "2025-01-01", "journals": {"outgoing_invoices": "70", "outgoing_credit_notes": "71"}}
YUKI = {"tool": "yuki", "name": "Yuki BV", "access_key": "yuki-key-98765", "administration_id": "0a1b2c3d-0000-4000-8000-00000000000a"}
EXACT = {"tool": "exact", "name": "Exact BV", "code": "good-code", "redirect_uri": "https://host.example/callback", "division": 123}


class ToolStub(FakeTool):
    """A tool that answers :data:`METADATA`; password / access key ``wrong`` is refused (the message
    repeats it, as a careless tool might), ``down`` fails as an outage."""

    def __init__(self, ctx: AdapterContext) -> None:
        super().__init__()
        self.ctx = ctx

    def fetch_metadata(self) -> ToolMetadata:
        creds = self.ctx.credentials.load()
        secret = creds.get("password") or creds.get("access_key") or ""
        if secret.startswith("wrong"):
            raise CredentialsChanged(f"login refused for secret {secret}")
        if secret.startswith("down"):
            raise AdapterError("tool unavailable: HTTP 503 (5 attempts)")
        return METADATA


def fake_exchange(base_url: str, app: dict[str, Any], code: str, redirect_uri: str, *, transport: Any = None) -> dict[str, Any]:
    if code != "good-code":
        raise api_setup.CredentialRefused("code", f"Exact Online refused the authorization code {code} (invalid_grant)")
    return {"access_token": "at", "refresh_token": "rt", "expires_at": time.time() + 600}


@dataclass
class Api:
    handler: Any
    stack: LocalStack
    stores: Stores
    started: list[str]
    contexts: list[AdapterContext] = field(default_factory=list)

    def __call__(self, method: str, path: str, tok: str | None = ADMIN, body: Any = None, **kwargs: Any) -> tuple[int, dict]:
        return call(self.handler, method, path, tok, body, **kwargs)

    def secret(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.stack.secrets.get_secret_value(SecretId=f"connector-prod/{name}")["SecretString"])
        except ClientError:
            return None

    def settings_items(self) -> str:
        return json.dumps(self.stack.dynamodb.scan(TableName=self.stack.table_names["SettingsTable"])["Items"])

    def connect(self, entity: str = "ent-1", body: dict | None = None, tok: str = ADMIN) -> dict:
        status, answer = self("PUT", f"/v1/entities/{entity}/integration", tok, body or OCTOPUS)
        assert status == 200, answer
        return answer

    def connected(self, entity: str = "ent-1", tok: str = ADMIN) -> dict:
        self.connect(entity, tok=tok)
        status, answer = self("PUT", f"/v1/entities/{entity}/integration/details", tok, DETAILS)
        assert status == 200 and answer["status"] == "Connected", answer
        return answer


@pytest.fixture()
def setup_api(monkeypatch):
    with LocalStack() as stack:
        put_secret(stack.secrets, "connector-prod/app/jwt", {"secret": SECRET})
        put_secret(stack.secrets, "connector-prod/app/exact", {"client_id": "connector", "client_secret": "app-secret"})
        stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
        started: list[str] = []
        runtime.use(engine.Services(stores=stores, adapter_for=lambda e: FakeTool(), host_for=lambda e: FakeHost([]), start_execution=started.append))
        api = Api(stack.dispatcher.handler_for("ApiFunction"), stack, stores, started)

        def create(ctx: AdapterContext) -> ToolStub:
            api.contexts.append(ctx)
            return ToolStub(ctx)

        monkeypatch.setattr(adapters, "create_adapter", create)
        monkeypatch.setattr(api_setup, "exchange_exact_code", fake_exchange)
        yield api


# --------------------------------------------------------------------------------------- connect


def test_connect_keeps_credentials_in_secrets_manager_only_and_never_returns_them(setup_api):
    api = setup_api
    answer = api.connect()
    assert answer["status"] == "Configuration needed"
    assert answer["tool"] == "octopus" and answer["connection"]["dossier_id"] == 4711
    assert answer["missing"] == ["start_date", "journals.outgoing_invoices", "journals.outgoing_credit_notes"]
    assert answer["metadata_fetched_at"]
    assert api.secret("acc-1/ent-1/octopus") == {"user": "web-user", "password": "octo-pass-1234"}
    assert "octo-pass-1234" not in json.dumps(answer)
    assert "octo-pass-1234" not in api.settings_items()
    assert api.contexts[-1].connection == {"dossier_id": 4711}
    assert api.contexts[-1].base_url == "https://service.inaras.be/octopus-rest-api/v1"  # the template parameter, never the API
    assert api.stores.get_metadata("acc-1", "ent-1") == METADATA
    status, entity = api("GET", "/v1/entities/ent-1")
    assert status == 200 and entity == {"entity_id": "ent-1", "name": "Octopus BV", "tool": "octopus", "status": "Configuration needed", "auto_sync": False, "running_sync_id": None}


def test_connect_yuki_and_exact(setup_api):
    api = setup_api
    yuki = api.connect("ent-y", {**YUKI, "domain_id": "0a1b2c3d-0000-4000-8000-00000000000d"})
    assert yuki["connection"] == {"division": None, "dossier_id": None, "administration_id": YUKI["administration_id"], "domain_id": "0a1b2c3d-0000-4000-8000-00000000000d"}
    assert api.secret("acc-1/ent-y/yuki") == {"access_key": "yuki-key-98765"}
    exact = api.connect("ent-x", EXACT)
    assert exact["connection"]["division"] == 123
    assert api.secret("acc-1/ent-x/exact")["refresh_token"] == "rt"
    assert "good-code" not in api.settings_items()


def test_connecting_goes_through_connecting(setup_api, monkeypatch):
    api = setup_api
    seen: list[str] = []

    class Watching(ToolStub):
        def fetch_metadata(self) -> ToolMetadata:
            seen.append(api.stores.get_entity("acc-1", "ent-1").status)
            return super().fetch_metadata()

    monkeypatch.setattr(adapters, "create_adapter", lambda ctx: Watching(ctx))
    api.connect()
    assert seen == ["Connecting"]
    assert api.stores.get_entity("acc-1", "ent-1").status == "Configuration needed"


def test_refused_credentials_are_422_on_the_field_without_the_value_and_nothing_is_kept(setup_api):
    api = setup_api
    status, answer = api("PUT", "/v1/entities/ent-1/integration", body={**OCTOPUS, "password": "wrong-password-42"})
    assert status == 422
    assert answer["errors"][0]["field"] == "password"
    assert "wrong-password-42" not in json.dumps(answer) and "***" in answer["errors"][0]["reason"]
    assert api("GET", "/v1/entities/ent-1")[0] == 404
    assert api.secret("acc-1/ent-1/octopus") is None
    status, answer = api("PUT", "/v1/entities/ent-y/integration", body={**YUKI, "access_key": "wrong-key-000"})
    assert status == 422 and answer["errors"][0]["field"] == "access_key"
    status, answer = api("PUT", "/v1/entities/ent-x/integration", body={**EXACT, "code": "expired-code"})
    assert status == 422 and answer["errors"] == [{"field": "code", "reason": "Exact Online refused the authorization code *** (invalid_grant)"}]


def test_a_failed_reconnect_keeps_the_previous_integration(setup_api):
    api = setup_api
    before = api.connected()
    status, answer = api("PUT", "/v1/entities/ent-1/integration", body={**OCTOPUS, "password": "down-for-maintenance"})
    assert status == 502 and "unavailable" in answer["message"] and "down-for-maintenance" not in answer["message"]
    assert api("GET", "/v1/entities/ent-1/integration")[1] == before
    assert api.secret("acc-1/ent-1/octopus")["password"] == "octo-pass-1234"


def test_reconnect_same_administration_keeps_setup_other_administration_resets_it(setup_api):
    api = setup_api
    api.connected()
    api.stores.put_relations("acc-1", "ent-1", "customer", {"c1": "rel-1"})
    again = api.connect(body={**OCTOPUS, "password": "new-password-1"})
    assert again["status"] == "Connected" and again["journals"]["outgoing_invoices"] == "70"
    assert api.secret("acc-1/ent-1/octopus")["password"] == "new-password-1"
    assert api.stores.get_relations("acc-1", "ent-1", "customer", ["c1"]) == {"c1": "rel-1"}
    other = api.connect(body={**OCTOPUS, "dossier_id": 9})
    assert other["status"] == "Configuration needed" and other["start_date"] is None
    assert api.stores.get_relations("acc-1", "ent-1", "customer", ["c1"]) == {}
    switched = api.connect(body=YUKI)
    assert switched["tool"] == "yuki"
    assert api.secret("acc-1/ent-1/octopus") is None and api.secret("acc-1/ent-1/yuki") == {"access_key": "yuki-key-98765"}


def test_the_fifth_entity_is_refused_with_a_clear_message(setup_api):
    api = setup_api
    for n in range(1, 5):
        api.connect(f"ent-{n}")
    status, answer = api("PUT", "/v1/entities/ent-5/integration", body=OCTOPUS)
    assert status == 409
    assert "4 connected company entities" in answer["message"] and "delete the integration" in answer["message"]
    assert api("GET", "/v1/entities/ent-5")[0] == 404
    api.connect("ent-2", {**OCTOPUS, "password": "rotated-pass"})  # reconnecting one of the four is fine
    status, listing = api("GET", "/v1/entities")
    assert status == 200 and [e["entity_id"] for e in listing["entities"]] == ["ent-1", "ent-2", "ent-3", "ent-4"] and listing["limit"] == 4
    assert api("DELETE", "/v1/entities/ent-3/integration")[0] == 204
    api.connect("ent-5")
    assert api("GET", "/v1/entities/acc-2-ent", token(account="acc-2", rights=["admin"]))[0] == 404
    assert api.connect("ent-1", tok=token(account="acc-2", rights=["admin"]))["status"] == "Configuration needed"  # another account: its own 4


BAD_CONNECT = [
    ({"name": "X", "user": "u", "password": "p", "dossier_id": 1}, "tool"),
    ({**OCTOPUS, "tool": "sage"}, "tool"),
    ({k: v for k, v in OCTOPUS.items() if k != "password"}, "password"),
    ({**OCTOPUS, "password": ""}, "password"),
    ({**OCTOPUS, "user": "x" * 201}, "user"),
    ({**OCTOPUS, "dossier_id": "abc"}, "dossier_id"),
    ({**OCTOPUS, "dossier_id": 0}, "dossier_id"),
    ({**OCTOPUS, "name": ""}, "name"),
    ({**OCTOPUS, "base_url": "https://evil.example"}, "base_url"),
    ({**EXACT, "redirect_uri": "ftp://host/cb"}, "redirect_uri"),
    ({k: v for k, v in EXACT.items() if k != "division"}, "division"),
    ({**EXACT, "code": ""}, "code"),
    ({**YUKI, "administration_id": "not a guid!"}, "administration_id"),
    ({**YUKI, "domain_id": ""}, "domain_id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CONNECT, ids=[f for _, f in BAD_CONNECT])
def test_bad_connect_input_is_422_naming_the_field(setup_api, body, field):
    status, answer = setup_api("PUT", "/v1/entities/ent-1/integration", body=body)
    assert status == 422, answer
    assert field in [e["field"] for e in answer["errors"]], answer
    assert all(e["reason"] for e in answer["errors"])
    for secret in ("octo-pass-1234", "good-code", "yuki-key-98765"):
        assert secret not in json.dumps(answer)
    assert setup_api.contexts == []


def test_malformed_bodies_and_ids_are_422_or_415(setup_api):
    api = setup_api
    assert api("PUT", "/v1/entities/ent-1/integration", raw_body="{not json") == (422, {"message": "invalid request: body", "errors": [{"field": "body", "reason": "the body is not valid JSON (Expecting property name enclosed in double quotes)"}]})
    assert api("PUT", "/v1/entities/ent-1/integration")[1]["errors"] == [{"field": "body", "reason": "required"}]
    assert api("PUT", "/v1/entities/ent-1/integration", raw_body="[1, 2]")[0] == 422
    status, answer = api("PUT", "/v1/entities/ent-1/integration", raw_body="user=x", headers={"Content-Type": "text/plain"})
    assert status == 415 and answer["errors"] == [{"field": "body", "reason": "the Content-Type must be application/json"}]
    status, answer = api("GET", "/v1/entities/" + "x" * 65)
    assert status == 422 and answer["errors"][0]["field"] == "entity_id"
    status, answer = api("GET", "/v1/entities/bad.id/integration")
    assert status == 422 and answer["errors"][0]["field"] == "entity_id"


# ------------------------------------------------------------------------------- the wizard steps


def test_details_validate_journals_against_the_tool_and_make_it_connected(setup_api):
    api = setup_api
    api.connect()
    bad = {"start_date": "2025-01-01", "journals": {"outgoing_invoices": "60", "outgoing_credit_notes": "99", "incoming_invoices": "79", "incoming_credit_notes": "71"}}
    status, answer = api("PUT", "/v1/entities/ent-1/integration/details", body=bad)
    assert status == 422
    reasons = {e["field"]: e["reason"] for e in answer["errors"]}
    assert reasons["journals.outgoing_invoices"] == "journal 60 is a purchase journal; outgoing invoices need a sales journal"
    assert reasons["journals.outgoing_credit_notes"] == "no journal with this code in Octopus; accepted journals: 70, 71"
    assert "is a sales journal" in reasons["journals.incoming_invoices"]
    assert "sales_credit journal" in reasons["journals.incoming_credit_notes"]
    status, answer = api("PUT", "/v1/entities/ent-1/integration/details", body={"start_date": "2025-01-01", "journals": {"outgoing_invoices": "79"}})
    assert status == 422 and answer["errors"] == [{"field": "journals.outgoing_invoices", "reason": "journal 79 is blocked (closed) in Octopus"}]

    status, answer = api("PUT", "/v1/entities/ent-1/integration/details", body={"start_date": "2025-01-01", "journals": {"outgoing_invoices": "70"}})
    assert status == 200 and answer["status"] == "Configuration needed" and answer["missing"] == ["journals.outgoing_credit_notes"]
    full = {"start_date": "2025-02-01", "journals": {"outgoing_invoices": "70", "outgoing_credit_notes": "70", "incoming_invoices": "60", "incoming_credit_notes": "61"}}
    status, answer = api("PUT", "/v1/entities/ent-1/integration/details", body=full)
    assert status == 200 and answer["status"] == "Connected" and answer["missing"] == []
    assert answer["start_date"] == "2025-02-01" and answer["journals"] == full["journals"]
    settings = api.stores.get_entity("acc-1", "ent-1").settings
    assert str(settings.start_date) == "2025-02-01" and settings.journals.incoming_credit_notes == "61"


BAD_DETAILS = [
    ({"journals": {}}, "start_date"),
    ({"start_date": "01/02/2025"}, "start_date"),
    ({"start_date": "1999-12-31"}, "start_date"),
    ({"start_date": "2025-01-01", "journals": {"outgoing_invoices": ""}}, "journals.outgoing_invoices"),
    ({"start_date": "2025-01-01", "journals": {"sales": "70"}}, "journals.sales"),
    ({"start_date": "2025-01-01", "journals": "70"}, "journals"),
]


@pytest.mark.parametrize(("body", "field"), BAD_DETAILS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_DETAILS)])
def test_bad_details_input_is_422_naming_the_field(setup_api, body, field):
    setup_api.connect()
    status, answer = setup_api("PUT", "/v1/entities/ent-1/integration/details", body=body)
    assert status == 422 and field in [e["field"] for e in answer["errors"]], answer


def test_synchronisation_needs_connected(setup_api):
    api = setup_api
    api.connect()
    status, answer = api("PUT", "/v1/entities/ent-1/integration/synchronisation", body={"auto_sync": True})
    assert status == 422 and answer["errors"][0]["field"] == "auto_sync" and "start_date" in answer["errors"][0]["reason"]
    assert api("PUT", "/v1/entities/ent-1/integration/synchronisation", body={"auto_sync": "maybe"})[1]["errors"][0]["field"] == "auto_sync"
    api("PUT", "/v1/entities/ent-1/integration/details", body=DETAILS)
    status, answer = api("PUT", "/v1/entities/ent-1/integration/synchronisation", body={"auto_sync": True})
    assert status == 200 and answer["auto_sync"] is True
    assert ("acc-1", "ent-1") in api.stores.auto_sync_entities()
    assert api("PUT", "/v1/entities/ent-1/integration/synchronisation", body={"auto_sync": False})[1]["auto_sync"] is False
    assert api.stores.auto_sync_entities() == []


class RatedHost(FakeHost):
    """A host product whose company entity has the tax rates ``rate-21`` and ``rate-6`` (``taxRates.list``)."""

    def __init__(self) -> None:
        super().__init__([])
        self.reads: list[bool] = []

    def tax_rates(self, *, refresh: bool = False) -> dict[str, Any]:
        self.reads.append(refresh)
        return {"rate-21": object(), "rate-6": object()}


def test_links_by_a_rate_id_the_entity_does_not_have_are_refused(setup_api):
    api = setup_api
    host = RatedHost()
    runtime.use(engine.Services(stores=api.stores, adapter_for=lambda e: FakeTool(), host_for=lambda e: host, start_execution=api.started.append))
    api.connected()
    reason = "no tax rate with id 'rate-9' in this company entity; its tax rates: rate-21, rate-6"

    status, answer = api("PUT", "/v1/entities/ent-1/integration/vat-code-links", body={"links": [{"vat_rate_id": "rate-21", "vat_code": "21"}, {"vat_rate_id": "rate-9", "vat_code": "6"}]})
    assert status == 422 and answer["errors"] == [{"field": "links[1].vat_rate_id", "reason": reason}]
    assert host.reads == [False, True]  # read again once before refusing: a rate added in the host since counts
    status, answer = api("PUT", "/v1/entities/ent-1/integration/ledger-account-links", body={"side": "purchase", "links": [{"vat_rate_id": "rate-9", "ledger_account": "700000"}]})
    assert status == 422 and answer["errors"] == [{"field": "links[0].vat_rate_id", "reason": reason}]
    status, answer = api("PUT", "/v1/entities/ent-1/integration/discount-accounts", body={"accounts": [{"vat_rate_id": "*", "ledger_account": "708000"}, {"vat_rate_id": "rate-9", "ledger_account": "708000"}]})
    assert status == 422 and answer["errors"] == [{"field": "accounts[1].vat_rate_id", "reason": reason}]
    settings = api.stores.get_entity("acc-1", "ent-1").settings
    assert settings.vat_codes == {} and settings.expense_ledger_accounts == {} and settings.discount_ledger_accounts == {}  # nothing half-written

    status, answer = api("PUT", "/v1/entities/ent-1/integration/vat-code-links", body={"links": [{"vat_rate_id": "rate-21", "vat_code": "21"}, {"vat_rate_id": "rate-6", "vat_code": "6"}]})
    assert status == 200, answer
    status, answer = api("PUT", "/v1/entities/ent-1/integration/discount-accounts", body={"accounts": [{"vat_rate_id": "*", "ledger_account": "708000"}, {"vat_rate_id": "rate-6", "ledger_account": "708000"}]})
    assert status == 200, answer


def test_links_and_discount_accounts_are_checked_and_stored(setup_api):
    api = setup_api
    api.connect()
    status, answer = api("PUT", "/v1/entities/ent-1/integration/vat-code-links", body={"links": [{"vat_rate_id": "rate-21", "vat_code": "21"}]})
    assert status == 409 and "details" in answer["message"]
    api("PUT", "/v1/entities/ent-1/integration/details", body=DETAILS)

    status, answer = api("PUT", "/v1/entities/ent-1/integration/vat-code-links", body={"links": [{"vat_rate_id": "rate-21", "vat_code": "99"}, {"vat_rate_id": "rate-21", "vat_code": "X"}]})
    assert status == 422
    assert [e["field"] for e in answer["errors"]] == ["links[1].vat_rate_id", "links[0].vat_code", "links[1].vat_code"]
    assert "known codes: 21, 6" in answer["errors"][1]["reason"] and "blocked" in answer["errors"][2]["reason"]
    status, answer = api("PUT", "/v1/entities/ent-1/integration/vat-code-links", body={"links": [{"vat_rate_id": "rate-21", "vat_code": "21"}, {"vat_rate_id": "rate-6", "vat_code": "6"}]})
    assert status == 200 and answer["vat_code_links"] == [{"vat_rate_id": "rate-21", "vat_code": "21"}, {"vat_rate_id": "rate-6", "vat_code": "6"}]

    status, answer = api("PUT", "/v1/entities/ent-1/integration/ledger-account-links", body={"links": [{"vat_rate_id": "rate-21", "ledger_account": "709999"}, {"vat_rate_id": "rate-6", "ledger_account": "1"}]})
    assert status == 422 and [e["field"] for e in answer["errors"]] == ["links[0].ledger_account", "links[1].ledger_account"]
    body = {"links": [{"vat_rate_id": "rate-21", "ledger_account": "700000"}, {"vat_rate_id": "rate-6", "ledger_account": "700006"}], "fill_existing_lines": True}
    status, answer = api("PUT", "/v1/entities/ent-1/integration/ledger-account-links", body=body)
    assert status == 200 and answer["ledger_account_links"] == body["links"] and answer["fill_existing_lines"] is True
    assert api.stores.get_setup_options("acc-1", "ent-1") == {"fill_existing_lines": True}
    bad = api("PUT", "/v1/entities/ent-1/integration/ledger-account-links", body={"links": [{"vat_rate_id": "", "ledger_account": "700000"}]})
    assert bad[0] == 422 and bad[1]["errors"][0]["field"] == "links[0].vat_rate_id"
    assert api("PUT", "/v1/entities/ent-1/integration/ledger-account-links", body={"links": [], "fill_existing_lines": "yes please"})[1]["errors"][0]["field"] == "fill_existing_lines"

    status, answer = api("PUT", "/v1/entities/ent-1/integration/discount-accounts", body={"accounts": [{"vat_rate_id": "*", "ledger_account": "999"}]})
    assert status == 422 and answer["errors"] == [{"field": "accounts[0].ledger_account", "reason": "no ledger account with this code in Octopus"}]
    status, answer = api("PUT", "/v1/entities/ent-1/integration/discount-accounts", body={"accounts": [{"vat_rate_id": "*", "ledger_account": "708000"}]})
    assert status == 200 and answer["discount_accounts"] == [{"vat_rate_id": "*", "ledger_account": "708000"}]
    assert api("PUT", "/v1/entities/ent-1/integration/discount-accounts", body={"accounts": "708000"})[1]["errors"][0]["field"] == "accounts"

    settings = api.stores.get_entity("acc-1", "ent-1").settings
    assert settings.vat_codes == {"rate-21": "21", "rate-6": "6"}
    assert settings.ledger_accounts == {"rate-21": "700000", "rate-6": "700006"}
    assert settings.discount_ledger_accounts == {"*": "708000"}
    status, view = api("GET", "/v1/entities/ent-1/integration", token(rights=["settings"]))
    assert status == 200 and view["status"] == "Connected" and view["fill_existing_lines"] is True


def test_tool_data_from_the_cache(setup_api):
    api = setup_api
    api.connect()
    status, accounts = api("GET", "/v1/entities/ent-1/tool/ledger-accounts", token(rights=["settings"]))
    assert status == 200 and [a["code"] for a in accounts["items"]] == ["700000", "700006", "708000", "709999"] and accounts["items"][3]["blocked"] is True
    status, journals = api("GET", "/v1/entities/ent-1/tool/journals")
    assert [(j["code"], j["accepted_for"]) for j in journals["items"]] == [
        ("60", ["incoming_invoices", "incoming_credit_notes"]), ("61", ["incoming_credit_notes"]), ("70", ["outgoing_invoices", "outgoing_credit_notes"]),
        ("71", ["outgoing_credit_notes"]), ("79", ["outgoing_invoices", "outgoing_credit_notes"]), ("90", []),
    ]
    status, offered = api("GET", "/v1/entities/ent-1/tool/journals", query={"purpose": "outgoing_invoices"})
    assert [j["code"] for j in offered["items"]] == ["70"]
    status, answer = api("GET", "/v1/entities/ent-1/tool/journals", query={"purpose": "sales"})
    assert status == 422 and answer["errors"][0]["field"] == "purpose"
    status, codes = api("GET", "/v1/entities/ent-1/tool/vat-codes")
    assert [c["code"] for c in codes["items"]] == ["21", "6", "X"]
    assert codes["items"][0] == {"code": "21", "description": "21%", "percentage": "21", "usage": "sales", "blocked": False}
    assert codes["fetched_at"] == accounts["fetched_at"]
    for path in ("ledger-accounts", "journals", "vat-codes"):
        assert api("GET", f"/v1/entities/ent-1/tool/{path}", token(rights=["invoices"]))[0] == 403


def test_delete_removes_secret_setup_and_cache_but_not_while_syncing(setup_api):
    api = setup_api
    api.connected()
    api.stores.acquire_lock("acc-1", "ent-1", "run-busy")
    status, answer = api("DELETE", "/v1/entities/ent-1/integration")
    assert status == 409 and answer["run_id"] == "run-busy"
    status, answer = api("PUT", "/v1/entities/ent-1/integration", body=OCTOPUS)
    assert status == 409 and answer["run_id"] == "run-busy"
    api.stores.release_lock("acc-1", "ent-1", "run-busy")
    api.stores.record_booked("acc-1", "ent-1", "outgoing_invoice", "d1", booking_number="1", entry_id="e1", run_id="r0")
    assert api("DELETE", "/v1/entities/ent-1/integration") == (204, {})
    assert api.secret("acc-1/ent-1/octopus") is None
    assert api("GET", "/v1/entities/ent-1/integration")[0] == 404
    assert api("GET", "/v1/entities/ent-1/tool/journals")[0] == 404
    assert api.stores.get_metadata("acc-1", "ent-1") is None
    assert api.stores.get_bookings("acc-1", "ent-1", "outgoing_invoice", ["d1"])["d1"]["state"] == "booked"
    assert api("DELETE", "/v1/entities/ent-1/integration")[0] == 404
    assert api("GET", "/v1/entities")[1]["entities"] == []


# ------------------------------------------------------------------------------------- rights


SETUP_WRITES = [r for r in ROUTES if r[0] in ("PUT", "DELETE") and "/integration" in r[1]]


@pytest.mark.parametrize(("method", "path", "body"), SETUP_WRITES, ids=[f"{m} {p}" for m, p, _ in SETUP_WRITES])
@pytest.mark.parametrize("rights", [["settings"], ["invoices", "expenses", "credit_notes"], []], ids=["settings", "documents", "none"])
def test_only_admins_change_setup(setup_api, method, path, body, rights):
    api = setup_api
    api.connected()
    before = api("GET", "/v1/entities/ent-1/integration")[1]
    status, answer = api(method, path.format(e="ent-1"), token(rights=rights), body)
    assert status == 403 and "admins only" in answer["message"]
    assert api("GET", "/v1/entities/ent-1/integration")[1] == before


def test_reading_setup_needs_admin_or_settings(setup_api):
    api = setup_api
    api.connect()
    assert api("GET", "/v1/entities/ent-1/integration", token(rights=["invoices"]))[0] == 403
    assert api("GET", "/v1/entities/ent-1/integration", token(rights=["settings"]))[0] == 200
    assert api("GET", "/v1/entities", token(rights=["expenses"]))[0] == 200  # the sync buttons need the entities
    assert api("GET", "/v1/entities", token(rights=[]))[0] == 403
    assert api("GET", "/v1/entities/ent-1", token(rights=[]))[0] == 403


# -------------------------------------------------------------------------------- across accounts


ENTITY_ROUTES = [r for r in ROUTES if "{e}" in r[1] and not (r[0] == "PUT" and r[1].endswith("/integration"))]


@pytest.mark.parametrize(("method", "path", "body"), ENTITY_ROUTES, ids=[f"{m} {p}" for m, p, _ in ENTITY_ROUTES])
def test_another_accounts_entity_is_404_never_403(setup_api, method, path, body):
    api = setup_api
    api.connected()
    before = api("GET", "/v1/entities/ent-1/integration")[1]
    for rights in (["admin"], ["invoices"], []):
        status, answer = api(method, path.format(e="ent-1"), token(account="acc-2", rights=rights), body)
        assert status == 404, (rights, answer)
        assert "ent-1" not in json.dumps(api("GET", "/v1/entities", token(account="acc-2", rights=rights))[1]) or rights == []
    assert api("GET", "/v1/entities/ent-1/integration")[1] == before
    assert api.started == []


def test_connecting_a_guessed_id_creates_nothing_in_the_other_account(setup_api):
    api = setup_api
    api.connected()
    other = token(account="acc-2", rights=["admin"])
    api.connect("ent-1", tok=other)
    assert api.stores.get_entity("acc-1", "ent-1").status == "Connected"
    assert api.secret("acc-1/ent-1/octopus")["password"] == "octo-pass-1234"
    assert api.secret("acc-2/ent-1/octopus") is not None
    assert api("DELETE", "/v1/entities/ent-1/integration", other)[0] == 204
    assert api("GET", "/v1/entities/ent-1/integration")[1]["status"] == "Connected"


def test_purchase_side_links_are_set_and_shown_separately(setup_api):
    api = setup_api
    api.connect()
    api("PUT", "/v1/entities/ent-1/integration/details", body=DETAILS)
    status, answer = api("PUT", "/v1/entities/ent-1/integration/vat-code-links", body={"side": "purchase", "links": [{"vat_rate_id": "rate-21", "vat_code": "21"}]})
    assert status == 422 and answer["errors"] == [{"field": "links[0].vat_code", "reason": "VAT code 21 is a sales VAT code; these links are for the purchase side"}]
    status, answer = api("PUT", "/v1/entities/ent-1/integration/vat-code-links", body={"side": "purchase", "links": [{"vat_rate_id": "rate-6", "vat_code": "6"}]})
    assert status == 200 and answer["purchase_vat_code_links"] == [{"vat_rate_id": "rate-6", "vat_code": "6"}] and answer["vat_code_links"] == []
    status, answer = api("PUT", "/v1/entities/ent-1/integration/ledger-account-links", body={"side": "purchase", "links": [{"vat_rate_id": "rate-6", "ledger_account": "700006"}]})
    assert status == 200 and answer["expense_ledger_account_links"] == [{"vat_rate_id": "rate-6", "ledger_account": "700006"}] and answer["ledger_account_links"] == []
    status, answer = api("PUT", "/v1/entities/ent-1/integration/discount-accounts", body={"side": "purchase", "accounts": [{"vat_rate_id": "*", "ledger_account": "708000"}]})
    assert status == 200 and answer["purchase_discount_accounts"] == [{"vat_rate_id": "*", "ledger_account": "708000"}] and answer["discount_accounts"] == []
    assert api("PUT", "/v1/entities/ent-1/integration/discount-accounts", body={"side": "both", "accounts": []})[1]["errors"][0]["field"] == "side"
    settings = api.stores.get_entity("acc-1", "ent-1").settings
    assert (settings.purchase_vat_codes, settings.expense_ledger_accounts, settings.purchase_discount_ledger_accounts) == ({"rate-6": "6"}, {"rate-6": "700006"}, {"*": "708000"})
