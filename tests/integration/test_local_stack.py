"""The real ASL and the real handlers under moto, with in-memory host and tool fakes."""

from __future__ import annotations

import json

import pytest

from connector import runtime
from connector.local.stack import LocalStack
from connector.models import IntegrationSettings, Trigger
from connector.stores.dynamodb import Stores, SyncAlreadyRunning
from connector.sync import engine
from tests.fakes import EXACT_SETTINGS, FakeHost, FakeTool, make_document

SETTINGS = EXACT_SETTINGS


@pytest.fixture()
def stack():
    with LocalStack() as local:
        yield local


def _wire(stack: LocalStack, host: FakeHost, tool: FakeTool, batch_size: int = 2) -> engine.Services:
    import boto3

    stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])
    svc = engine.Services(
        stores=stores,
        adapter_for=lambda entity: tool,
        host_for=lambda entity: host,
        start_execution=lambda run_id: stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=run_id, input=json.dumps({"run_id": run_id})),
        batch_size=batch_size,
    )
    stores.put_entity("acc", "ent", name="Demo", tool="exact", status="Connected", settings=SETTINGS)
    runtime.use(svc)
    return svc


def test_substitutions_resolved_and_map_paths_kept(stack):
    definition = stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"]
    assert "${" not in definition
    assert "$$.Map.Item.Value" in definition
    assert ":function:ProcessBatchFunction" in definition


def test_run_books_each_document_once_and_orders_components(stack):
    docs = [make_document(f"d{i}", "100.00", customer=f"c{i % 2}") for i in range(5)]
    host, tool = FakeHost(docs), FakeTool(reject=["d3"])
    svc = _wire(stack, host, tool)

    run_id = engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
    execution = stack.wait(run_id)
    assert execution["status"] == "SUCCEEDED"
    run = svc.stores.get_run(run_id)
    assert run["status"] == "Warning", run.get("error")
    comps = run["components"]
    assert comps["ledger_accounts"]["status"] == "Success"
    assert comps["customers"]["status"] == "Success" and comps["customers"]["synced"] == 2
    assert comps["outgoing_invoices"]["status"] == "Warning"
    assert comps["outgoing_invoices"]["synced"] == 4 and comps["outgoing_invoices"]["skipped"] == 1
    assert comps["outgoing_credit_notes"]["status"] == "Success"
    assert set(host.booking_numbers) == {"d0", "d1", "d2", "d4"}
    skipped = [r for r in svc.stores.get_results(run_id, "outgoing_invoices") if r["outcome"] == "skipped"]
    assert skipped[0]["id"] == "d3" and "period closed" in skipped[0]["reason"]
    assert svc.stores.lock_holder("acc", "ent") is None

    # Second run: nothing new is posted; the refused one is tried again.
    tool.reject.clear()
    posts = tool.posts
    run2 = engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
    stack.wait(run2)
    assert tool.posts == posts + 1
    results = {r["id"]: r["outcome"] for r in svc.stores.get_results(run2, "outgoing_invoices")}
    assert results == {"d0": "already_synced", "d1": "already_synced", "d2": "already_synced", "d4": "already_synced", "d3": "synced"}


def test_transitions_grow_with_batches_not_documents(stack):
    # Exact's batches hold 50 documents, the first of a component 25 (staggered): 51 and 75 documents
    # are both two batches
    assert [len(b) for b in engine.staggered_batches(list(range(51)), 50, 2)] == [25, 26]
    assert [len(b) for b in engine.staggered_batches(list(range(75)), 50, 2)] == [25, 50]
    host, tool = FakeHost([make_document(f"d{i}", "10.00") for i in range(51)]), FakeTool()
    svc = _wire(stack, host, tool)
    few = engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
    stack.wait(few)
    transitions_2_batches = stack.state_transitions(few)

    host2 = FakeHost([make_document(f"e{i}", "10.00", customer="c9") for i in range(75)])
    svc2 = _wire(stack, host2, FakeTool())
    many = engine.start_sync(svc2, "acc", "ent", trigger=Trigger.NIGHTLY)
    stack.wait(many)
    assert len(host2.booking_numbers) == 75
    assert stack.state_transitions(many) == transitions_2_batches


def test_tool_failure_ends_component_in_error_and_leaves_the_rest_pending(stack):
    svc = _wire(stack, FakeHost([make_document("d1", "5.00")]), FakeTool(fail_with="tool is down"))
    run_id = engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
    stack.wait(run_id)
    run = svc.stores.get_run(run_id)
    assert run["status"] == "Error"
    assert run["components"]["ledger_accounts"]["status"] == "Error"
    assert "tool is down" in run["components"]["ledger_accounts"]["error"]
    assert all(run["components"][c]["status"] == "Pending" for c in ("customers", "outgoing_invoices", "incoming_credit_notes"))
    assert svc.stores.lock_holder("acc", "ent") is None


def test_one_sync_per_entity(stack):
    svc = _wire(stack, FakeHost([]), FakeTool())
    svc.start_execution = lambda run_id: None  # keep the first run "running"
    first = engine.start_sync(svc, "acc", "ent", trigger=Trigger.MANUAL, started_by="u1")
    with pytest.raises(SyncAlreadyRunning) as raised:
        engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
    assert raised.value.run_id == first


@pytest.mark.parametrize(("tool", "expected"), [("octopus", 1), ("exact", 2)])
def test_document_batches_run_as_many_at_once_as_the_plan_says(stack, tool, expected):
    import threading
    import time

    from connector.adapters import documents_per_batch

    documents = 2 * documents_per_batch(tool, 2) + 1  # three batches at least, whatever the tool's batch size
    host, fake = FakeHost([make_document(f"d{i}", "10.00") for i in range(documents)]), FakeTool()
    post, lock, state = fake.post_bookings, threading.Lock(), {"now": 0, "peak": 0}

    def slow_post(entries):  # long enough for the Map to start the other batches meanwhile
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.3)
        with lock:
            state["now"] -= 1
        return post(entries)

    fake.post_bookings = slow_post
    svc = _wire(stack, host, fake, batch_size=2)
    svc.stores.put_entity("acc", "ent", name="Demo", tool=tool, status="Connected", settings=IntegrationSettings.model_validate({**SETTINGS.model_dump(), "tool": tool}))
    run_id = engine.start_sync(svc, "acc", "ent", trigger=Trigger.NIGHTLY)
    assert stack.wait(run_id)["status"] == "SUCCEEDED"
    assert len(host.booking_numbers) == documents
    # Octopus: one batch at a time (caller-chosen sequence numbers); Exact: two side by side
    assert (state["peak"] == 1) if expected == 1 else (state["peak"] >= expected)
