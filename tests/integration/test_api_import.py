"""Importing the tool's relations through the API under moto (``POST /v1/entities/{id}/integration/
import-relations``), with the real Octopus adapter and host client on the sandboxes: the report, a second
import that creates nothing, the status rules (409 while Connecting or while a sync runs), rights (403),
other accounts (404), a failing tool (502, the lock released), stored relation mappings dropped after a
link."""

from __future__ import annotations

from datetime import date
from typing import Any

import boto3
import httpx
import pytest

from connector import runtime
from connector.adapters.octopus import OctopusAdapter
from connector.host.client import HostClient
from connector.local.stack import LocalStack
from connector.models import IntegrationSettings, JournalSettings
from connector.sandbox.admin import AdminRequest
from connector.sandbox.host import HostSandbox
from connector.sandbox.octopus import OctopusSandbox, demo_administration
from connector.stores.dynamodb import Stores
from connector.stores.memory import MemoryCredentialStore
from connector.stores.secrets import put_secret
from connector.sync import engine
from tests.fakes import FakeTool
from tests.integration.test_api import SECRET, call, token

ADMIN = token(rights=["admin"])
PATH = "/v1/entities/{e}/integration/import-relations"
SETTINGS = IntegrationSettings(tool="octopus", start_date=date(2025, 1, 1), journals=JournalSettings(outgoing_invoices="V1", outgoing_credit_notes="V2"))


class World:
    """The API handler under moto, a host sandbox (account acc-1's companies) and an Octopus sandbox."""

    def __init__(self, stack: LocalStack, stores: Stores) -> None:
        self.stack, self.stores = stack, stores
        self.handler = stack.dispatcher.handler_for("ApiFunction")
        self.host = HostSandbox()
        self.host_account = self.host.add_account("host-token")
        self.dept = self.host.add_department(self.host_account, "Octopus BV", "BE0123456749")
        self.octopus = OctopusSandbox()
        self.admin = demo_administration(self.octopus, AdminRequest(rates=(), currencies=frozenset({"EUR"}), years=(2025,)))
        self.dossier = self.admin.connection["dossier_id"]
        self.adapters: list[Any] = []

    def adapter_for(self, entity: Any) -> OctopusAdapter:
        adapter = OctopusAdapter("http://octopus.test", self.dossier, MemoryCredentialStore(self.admin.credentials),
                                 software_house_uuid=self.admin.app_secret["software_house_uuid"],
                                 transport=httpx.WSGITransport(app=self.octopus))
        self.adapters.append(adapter)
        return adapter

    def host_for(self, entity: Any) -> HostClient:
        return HostClient("http://host.test", "host-token", entity.entity_id, transport=httpx.WSGITransport(app=self.host))

    def entity(self, status: str = "Configuration needed", account: str = "acc-1") -> None:
        self.stores.put_entity(account, self.dept, name="Octopus BV", tool="octopus", status=status,
                               settings=SETTINGS if status == "Connected" else None, connection={"dossier_id": self.dossier})

    def __call__(self, tok: str | None = ADMIN, entity: str | None = None) -> tuple[int, dict]:
        return call(self.handler, "POST", PATH.format(e=entity or self.dept), tok)

    def companies(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.host.companies(self.host_account)}


@pytest.fixture()
def world():
    with LocalStack() as stack:
        put_secret(stack.secrets, "connector-prod/app/jwt", {"secret": SECRET})
        stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
        w = World(stack, stores)
        runtime.use(engine.Services(stores=stores, adapter_for=w.adapter_for, host_for=w.host_for, start_execution=lambda run_id: None))
        try:
            yield w
        finally:
            runtime.use(None)


def test_import_reports_linked_created_ambiguous_and_a_second_run_creates_nothing(world):
    world.entity()
    acme = world.host.add_company(world.host_account, "Acme NV", vat_number="BE 0123.456.749")
    peeters = world.host.add_company(world.host_account, "Bakkerij Peeters")
    twin_a = world.host.add_company(world.host_account, "Dupont SA", vat_number="FR40303265045")
    twin_b = world.host.add_company(world.host_account, "Dupont", vat_number="FR 40303265045")
    by_vat = world.octopus.add_relation(world.dossier, "ACME", vat_nr="BE0123456749")
    by_name = world.octopus.add_relation(world.dossier, "Bakkerij Peeters")
    ambiguous = world.octopus.add_relation(world.dossier, "Dupont", vat_nr="FR40303265045")
    new = world.octopus.add_relation(world.dossier, "Nieuw BV", vat_nr="BE0411111111", supplier=True, client=False)

    status, body = world()
    assert status == 200, body
    assert (body["linked"], body["created"], body["ambiguous"], body["already_linked"], body["skipped"]) == (2, 1, 1, 0, 0)
    assert body["entity_id"] == world.dept and body["tool"] == "octopus"
    details = {d["tool_code"]: d for d in body["details"]}
    assert details[str(by_vat)]["action"] == "linked" and details[str(by_vat)]["host_ids"] == [acme] and details[str(by_vat)]["matched_by"] == "vat_number"
    assert details[str(by_name)]["matched_by"] == "name" and details[str(by_name)]["host_ids"] == [peeters]
    amb = details[str(ambiguous)]
    assert amb["action"] == "ambiguous" and "merge by hand" in amb["reason"] and sorted(amb["host_ids"]) == sorted([twin_a, twin_b])
    created = world.companies()[details[str(new)]["host_ids"][0]]
    assert created["tags"] == ["Octopus Import"] and created["external_ids"][0]["external_id"] == str(new)
    assert world.companies()[acme]["external_ids"] == [{"department_id": world.dept, "tool": "octopus", "external_id": str(by_vat)}]
    assert world.stores.lock_holder("acc-1", world.dept) is None  # the import's lock is released
    assert all(a._http.is_closed for a in world.adapters)

    count = len(world.companies())
    status, again = world()
    assert status == 200
    assert (again["linked"], again["created"], again["ambiguous"], again["already_linked"]) == (0, 0, 1, 3)
    assert len(world.companies()) == count


def test_status_rules_rights_and_accounts(world):
    world.entity(status="Connecting")
    status, body = world()
    assert status == 409 and "Connecting" in body["message"]
    world.entity(status="Connected")
    assert world(token(rights=["settings"]))[0] == 403
    assert world(token(rights=["invoices", "expenses", "credit_notes"]))[0] == 403
    assert world(token(account="acc-2", rights=["admin"]))[0] == 404
    assert world(entity="ent-unknown")[0] == 404
    assert world()[0] == 200


def test_refused_while_a_sync_runs(world):
    world.entity(status="Connected")
    world.stores.acquire_lock("acc-1", world.dept, "run-42")
    status, body = world()
    assert status == 409 and body["run_id"] == "run-42"
    assert world.stores.lock_holder("acc-1", world.dept) == "run-42"


def test_a_failing_tool_is_502_and_the_lock_is_released(world, clock):
    world.entity()
    world.octopus.fail_next(503, count=20, endpoint="relations")
    status, body = world()
    assert status == 502 and "import again" in body["message"]
    assert world.stores.lock_holder("acc-1", world.dept) is None


def test_a_tool_that_cannot_list_relations_is_409(world):
    world.entity()
    runtime.use(engine.Services(stores=world.stores, adapter_for=lambda e: FakeTool(), host_for=world.host_for, start_execution=lambda r: None))
    status, body = world()
    assert status == 409 and "can't list them" in body["message"]


def test_stored_relation_mappings_are_dropped_after_a_link(world):
    world.entity(status="Connected")
    acme = world.host.add_company(world.host_account, "Acme NV", vat_number="BE0123456749")
    world.octopus.add_relation(world.dossier, "Acme", vat_nr="BE0123456749")
    world.stores.put_relations("acc-1", world.dept, "customer", {acme: "999"})  # made before the link
    assert world()[0] == 200
    assert world.stores.get_relations("acc-1", world.dept, "customer", [acme]) == {}
