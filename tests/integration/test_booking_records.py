"""The document records that keep a document from being booked twice, written in bulk (DynamoDB under moto)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from connector.local.stack import PROJECT_ROOT
from connector.local.template import create_tables
from connector.stores.dynamodb import Stores

KIND = "outgoing_invoice"


@pytest.fixture()
def stores():
    with mock_aws():
        names = create_tables(boto3.client("dynamodb", region_name="eu-west-1"), PROJECT_ROOT / "template.yaml")
        yield Stores(boto3.resource("dynamodb", region_name="eu-west-1"), names["SettingsTable"], names["RunsTable"], names["NotificationsTable"])


def _states(stores: Stores) -> dict[str, str]:
    return {r["host_id"]: r["state"] for r in stores.list_bookings("acc", "ent")}


def test_intents_of_a_whole_batch_are_written_in_bulk(stores):
    calls: list[str] = []
    stores.settings.meta.client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    stores.record_intents("acc", "ent", KIND, [(f"d{i}", f"INV-{i}") for i in range(30)], "run-1")
    assert calls == ["BatchWriteItem", "BatchWriteItem"]  # 25 a call
    assert _states(stores) == {f"d{i}": "intent" for i in range(30)}
    assert stores.get_bookings("acc", "ent", KIND, ["d7"])["d7"]["reference"] == "INV-7"


def test_bookings_of_a_batch_are_recorded_in_bulk_with_their_numbers(stores):
    stores.record_intents("acc", "ent", KIND, [(f"d{i}", f"INV-{i}") for i in range(30)], "run-1")
    calls: list[str] = []
    stores.settings.meta.client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    stores.record_booked_many("acc", "ent", KIND, [{"host_id": f"d{i}", "booking_number": str(100 + i), "entry_id": f"e{i}", "reference": f"INV-{i}"} for i in range(30)], "run-1")
    assert calls == ["BatchWriteItem", "BatchWriteItem"]  # 25 a call
    records = stores.get_bookings("acc", "ent", KIND, [f"d{i}" for i in range(30)])
    assert {h: (r["state"], r["booking_number"], r["entry_id"]) for h, r in records.items()} == {f"d{i}": ("booked", str(100 + i), f"e{i}") for i in range(30)}


def test_run_results_are_stored_a_hundred_to_an_item_with_the_parts_tally(stores):
    from connector.sync.engine import tally

    results = [{"id": f"d{i:03d}", "number": f"2025/{i}", "outcome": "skipped" if i % 50 == 0 else "synced", "booking_number": None if i % 50 == 0 else str(i), "reason": "no VAT code" if i % 50 == 0 else None} for i in range(150)]
    calls: list[str] = []
    stores.runs.meta.client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    stores.put_results("run-1", "outgoing_invoices", results, part="batch-00000", tally=tally(results))
    assert calls == ["BatchWriteItem"]  # two result items and the tally in one request, not 150 items
    stores.put_results("run-1", "customers", [{"id": "company:c1", "outcome": "synced"}], part="batch-00000", tally=tally([{"id": "company:c1", "outcome": "synced"}]))

    got = stores.get_results("run-1", "outgoing_invoices")
    assert [r["id"] for r in got] == [f"d{i:03d}" for i in range(150)]
    assert got[50] == {"id": "d050", "number": "2025/50", "outcome": "skipped", "reason": "no VAT code", "component": "outgoing_invoices"}
    assert {r["component"] for r in stores.get_results("run-1")} == {"outgoing_invoices", "customers"}
    assert stores.get_tallies("run-1", "outgoing_invoices") == [{"synced": 147, "already_synced": 0, "skipped": 3, "flagged": 0, "not_synced": 0}]

    # a retried batch writes its part again: its results and tally are replaced, never counted twice
    stores.put_results("run-1", "outgoing_invoices", results, part="batch-00000", tally=tally(results))
    assert len(stores.get_results("run-1", "outgoing_invoices")) == 150
    assert len(stores.get_tallies("run-1", "outgoing_invoices")) == 1
