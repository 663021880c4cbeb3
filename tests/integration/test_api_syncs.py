"""Syncs and notifications through the API under moto: start one / all (202, 409 with the running id),
history (7 days + the latest success), View details, notifications (list, mark read); rights and
account scoping. One test runs a manual sync through the real state machine, API to notification."""

from __future__ import annotations

import json

import boto3
import pytest

from connector import runtime
from connector.local.stack import LocalStack
from connector.models import ComponentStatus, RunStatus
from connector.notify import Notifier
from connector.stores.dynamodb import Stores
from connector.stores.secrets import put_secret
from connector.sync import engine
from tests.fakes import EXACT_SETTINGS, FakeHost, FakeTool, make_document
from tests.integration.test_api import SECRET, call, token

SETTINGS = EXACT_SETTINGS
ADMIN = token(rights=["admin"])
DOCS = token(rights=["expenses"])


@pytest.fixture()
def sync_api(clock):
    """Entities of acc-1: ent-1 and ent-2 Connected, ent-3 Configuration needed; acc-2: ent-9."""
    with LocalStack() as stack:
        put_secret(stack.secrets, "connector-prod/app/jwt", {"secret": SECRET})
        stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
        started: list[str] = []
        runtime.use(engine.Services(stores=stores, adapter_for=lambda e: FakeTool(), host_for=lambda e: FakeHost([]), start_execution=started.append))
        for account, entity, status in (("acc-1", "ent-1", "Connected"), ("acc-1", "ent-2", "Connected"), ("acc-1", "ent-3", "Configuration needed"), ("acc-2", "ent-9", "Connected")):
            stores.put_entity(account, entity, name=entity.upper(), tool="exact", status=status, settings=SETTINGS if status == "Connected" else None, connection={"division": 1})
        handler = stack.dispatcher.handler_for("ApiFunction")

        def api(method, path, tok=ADMIN, body=None, **kwargs):
            return call(handler, method, path, tok, body, **kwargs)

        yield api, stores, started


def test_start_one_then_409_with_the_running_id_until_it_finishes(sync_api):
    api, stores, started = sync_api
    status, body = api("POST", "/v1/entities/ent-1/syncs", DOCS)
    assert status == 202 and started == [body["run_id"]]
    status, again = api("POST", "/v1/entities/ent-1/syncs", token(rights=["credit_notes"]))
    assert status == 409 and again["run_id"] == body["run_id"] and "already running" in again["message"]
    assert api("GET", "/v1/entities/ent-1")[1]["running_sync_id"] == body["run_id"]
    stores.release_lock("acc-1", "ent-1", body["run_id"])
    assert api("POST", "/v1/entities/ent-1/syncs", DOCS)[0] == 202


def test_an_entity_not_set_up_is_409_without_run_id(sync_api):
    api, _, started = sync_api
    status, body = api("POST", "/v1/entities/ent-3/syncs")
    assert status == 409 and "run_id" not in body and "Configuration needed" in body["message"] and "start_date" in body["message"]
    assert started == []


def test_start_all_starts_each_connected_entity_and_names_the_busy_ones(sync_api):
    api, _, started = sync_api
    _, first = api("POST", "/v1/entities/ent-2/syncs")
    status, body = api("POST", "/v1/syncs", token(rights=["invoices"]))
    assert status == 202
    assert [s["entity_id"] for s in body["started"]] == ["ent-1"]
    assert body["busy"] == [{"entity_id": "ent-2", "run_id": first["run_id"]}]
    assert len(started) == 2
    status, body = api("POST", "/v1/syncs", token(account="acc-3", rights=["invoices"]))
    assert status == 202 and body == {"started": [], "busy": []}


def test_starting_needs_document_rights(sync_api):
    api, _, started = sync_api
    for rights in (["settings"], []):
        assert api("POST", "/v1/entities/ent-1/syncs", token(rights=rights))[0] == 403
        assert api("POST", "/v1/syncs", token(rights=rights))[0] == 403
    assert started == []


def _run(stores: Stores, clock, run_id: str, status: RunStatus, entity: str = "ent-1") -> None:
    stores.create_run(run_id=run_id, account_id="acc-1", entity_id=entity, tool="exact", trigger="nightly", started_by=None)
    for name in ("ledger_accounts", "customers", "outgoing_invoices"):
        stores.set_component(run_id, name, ComponentStatus.SUCCESS, synced=1, skipped=0)
    stores.close_run(run_id, status)
    if status is RunStatus.SUCCESS:
        stores.keep_latest_success("acc-1", entity, run_id)
    clock.advance(24 * 3600)


def test_history_keeps_seven_days_and_the_latest_success(sync_api, clock):
    api, stores, _ = sync_api
    _run(stores, clock, "old-success", RunStatus.SUCCESS)  # day 0
    clock.advance(24 * 3600)
    _run(stores, clock, "old-error", RunStatus.ERROR)  # day 2
    clock.advance(5 * 24 * 3600)
    _run(stores, clock, "recent-warning", RunStatus.WARNING)  # day 8
    _run(stores, clock, "recent-error", RunStatus.ERROR)  # day 9
    clock.advance(24 * 3600)  # now: day 11; 7 days back is day 4
    status, history = api("GET", "/v1/entities/ent-1/syncs", token(rights=["settings"]))
    assert status == 200
    assert [r["run_id"] for r in history["runs"]] == ["recent-error", "recent-warning", "old-success"]
    run = history["runs"][2]
    assert run["status"] == "Success" and run["trigger"] == "nightly" and run["finished_at"]
    assert [c["name"] for c in run["components"]][:3] == ["ledger_accounts", "customers", "outgoing_invoices"]
    assert run["components"][2] == {"name": "outgoing_invoices", "label": "Outgoing invoices", "status": "Success", "total": None, "synced": 1, "already_synced": 0, "skipped": 0, "flagged": 0, "error": None, "resume_at": None}
    assert api("GET", "/v1/entities/ent-1/syncs", token(rights=[]))[0] == 403
    assert api("GET", "/v1/entities/ent-9/syncs")[0] == 404
    assert api("GET", "/v1/entities/nope/syncs")[0] == 404


def test_view_details_lists_skipped_and_flagged_with_reason_hint_and_host_object(sync_api):
    api, stores, _ = sync_api
    _, body = api("POST", "/v1/entities/ent-1/syncs", DOCS)
    run_id = body["run_id"]
    stores.put_results(run_id, "outgoing_invoices", [
        {"id": "d1", "number": "2025/1", "outcome": "synced", "booking_number": "7"},
        {"id": "d2", "number": "2025/2", "outcome": "skipped", "reason": "no VAT code for 21%", "hint": "Link the VAT rate in the settings.", "subject_type": "invoice", "subject_id": "d2"},
        {"id": "d3", "number": "2025/3", "outcome": "synced", "flag": "booked, but the host refused the number", "subject_type": "invoice", "subject_id": "d3"},
    ], part="batch-00000")
    stores.put_results(run_id, "customers", [{"id": "company:c9", "number": "Acme", "outcome": "skipped", "reason": "customer 'Acme' could not be synced", "hint": "Open the company.", "subject_type": "company", "subject_id": "c9"}], part="batch-00000")
    status, details = api("GET", f"/v1/syncs/{run_id}", token(rights=["credit_notes"]))
    assert status == 200
    assert details["run"]["run_id"] == run_id and details["run"]["status"] == "Running" and details["run"]["started_by"] == "u-1"
    by_id = {d["id"]: d for d in details["details"]}
    assert set(by_id) == {"d2", "d3", "company:c9"}
    assert by_id["d2"] == {"component": "outgoing_invoices", "id": "d2", "number": "2025/2", "outcome": "skipped", "reason": "no VAT code for 21%", "hint": "Link the VAT rate in the settings.", "flag": None, "booking_number": None, "subject_type": "invoice", "subject_id": "d2", "proposed": None}
    assert by_id["d3"]["flag"].startswith("booked") and by_id["company:c9"]["subject_type"] == "company"
    assert api("GET", f"/v1/syncs/{run_id}", token(account="acc-2", rights=["admin"]))[0] == 404
    assert api("GET", f"/v1/syncs/{run_id}", token(rights=[]))[0] == 403
    assert api("GET", "/v1/syncs/unknown-run")[0] == 404


def test_notifications_of_the_calling_user_only(sync_api):
    api, stores, _ = sync_api
    mine = stores.add_notification("acc-1", "u-1", title="Accounting sync finished: Warning", body="Outgoing invoices: 2 synced, 1 skipped", run_id="r1", link="https://host/r1")
    stores.add_notification("acc-1", "u-1", title="Accounting sync finished: Success", body="ok", run_id="r2", link="https://host/r2")
    theirs = stores.add_notification("acc-1", "u-2", title="other user", body="", run_id="r3", link="https://host/r3")
    other_account = stores.add_notification("acc-2", "u-1", title="other account", body="", run_id="r4", link="https://host/r4")
    status, listing = api("GET", "/v1/notifications", token(rights=[]))
    assert status == 200 and {n["title"] for n in listing["notifications"]} == {"Accounting sync finished: Warning", "Accounting sync finished: Success"}
    status, note = api("PUT", f"/v1/notifications/{mine}/read", token(rights=[]))
    assert status == 200 and note["read"] is True and note["run_id"] == "r1"
    assert api("PUT", f"/v1/notifications/{mine}/read")[1]["read"] is True  # idempotent
    status, unread = api("GET", "/v1/notifications", query={"unread_only": "true"})
    assert [n["run_id"] for n in unread["notifications"]] == ["r2"]
    assert api("GET", "/v1/notifications", query={"unread_only": "perhaps"})[1]["errors"][0]["field"] == "unread_only"
    for other in (theirs, other_account, "not-there"):
        assert api("PUT", f"/v1/notifications/{other}/read")[0] == 404
    assert stores.get_notification("acc-1", "u-2", theirs)["read"] is False


def test_manual_sync_through_the_state_machine_shows_up_in_history_details_and_notifications():
    """API -> start_sync -> the real ASL and handlers -> history, View details, the starter's notification."""
    with LocalStack() as stack:
        put_secret(stack.secrets, "connector-prod/app/jwt", {"secret": SECRET})
        stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
        host = FakeHost([make_document("d1", "100.00"), make_document("d2", "50.00", customer="c2")])
        tool = FakeTool(reject=["d2"])
        svc = engine.Services(
            stores=stores,
            adapter_for=lambda e: tool,
            host_for=lambda e: host,
            start_execution=lambda run_id: stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=run_id, input=json.dumps({"run_id": run_id})),
            notify=Notifier(stores, stack.ses, stack.parameters["SenderEmail"]),
        )
        runtime.use(svc)
        stores.put_entity("acc-1", "ent-1", name="E", tool="exact", status="Connected", settings=SETTINGS)
        handler = stack.dispatcher.handler_for("ApiFunction")
        status, body = call(handler, "POST", "/v1/entities/ent-1/syncs", DOCS)
        assert status == 202
        assert stack.wait(body["run_id"])["status"] == "SUCCEEDED"
        status, history = call(handler, "GET", "/v1/entities/ent-1/syncs", DOCS)
        assert history["running_sync_id"] is None
        run = history["runs"][0]
        assert run["status"] == "Warning" and run["trigger"] == "manual"
        invoices = next(c for c in run["components"] if c["name"] == "outgoing_invoices")
        assert (invoices["status"], invoices["synced"], invoices["skipped"]) == ("Warning", 1, 1)
        status, details = call(handler, "GET", f"/v1/syncs/{body['run_id']}", DOCS)
        assert [(d["id"], d["subject_type"]) for d in details["details"]] == [("d2", "invoice")]
        assert "period closed" in details["details"][0]["reason"] and details["details"][0]["hint"] == "open the period"
        status, notes = call(handler, "GET", "/v1/notifications", token(rights=["expenses"]))
        assert [n["run_id"] for n in notes["notifications"]] == [body["run_id"]] and notes["notifications"][0]["read"] is False
