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
