"""Deliveries of one supplier invoice (one supplier, one number, EN 16931 BT-1) are booked once: the
claim written with the first one's intent stops the later ones, across steps and runs and after a crash
between the intent and the booking; a claim of a document the tool refused is stale (DynamoDB under moto)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from connector.local.stack import PROJECT_ROOT
from connector.local.template import create_tables
from connector.models import Direction, Party
from connector.stores.dynamodb import EntityRecord, Stores
from connector.sync import engine
from tests.fakes import make_document

KIND = "incoming_invoice"
ENTITY = EntityRecord(account_id="acc", entity_id="ent", name="Ent", tool="exact", status="Connected", settings=None, connection={})


@pytest.fixture()
def svc():
    with mock_aws():
        names = create_tables(boto3.client("dynamodb", region_name="eu-west-1"), PROJECT_ROOT / "template.yaml")
        stores = Stores(boto3.resource("dynamodb", region_name="eu-west-1"), names["SettingsTable"], names["RunsTable"], names["NotificationsTable"])
        yield engine.Services(stores=stores, adapter_for=None, host_for=None, start_execution=lambda run_id: None)  # type: ignore[arg-type]


def _incoming(host_id: str, net: str = "100.00", *, number: str = "F-1", supplier: str = "s1"):
    return make_document(host_id, net, number=number, customer=supplier).model_copy(update={"direction": Direction.INCOMING})


def _send(svc, docs, run_id="run-1"):
    """What a step does before posting: the check, then the intents with the claims."""
    kept, skipped, claims, repeats = engine._repeated_deliveries(svc, ENTITY, KIND, docs)
    svc.stores.record_intents("acc", "ent", KIND, [(d.host_id, d.number) for d in kept], run_id, deliveries=[claims[d.host_id] for d in kept if d.host_id in claims])
    return kept, skipped, repeats


def test_a_delivery_after_a_crash_between_intent_and_booking_is_not_sent_again(svc):
    kept, skipped, _ = _send(svc, [_incoming("a")])
    assert [d.host_id for d in kept] == ["a"] and skipped == []
    # crash here: "a" holds an intent, maybe booked in the tool. Its own retry is not a repeat ...
    assert [d.host_id for d in engine._repeated_deliveries(svc, ENTITY, KIND, [_incoming("a")])[0]] == ["a"]
    # ... but a second delivery is, and says the first one is on its way.
    kept, [result], _ = _send(svc, [_incoming("b")], "run-2")
    assert kept == [] and result["id"] == "b" and result["outcome"] == "skipped" and result["duplicate_of"] == "a"
    assert "incoming invoice F-1 of Customer s1 was delivered twice: already sent to the accounting tool from document a (F-1)" in result["reason"]


def test_a_delivery_next_night_names_the_booking_number_of_the_first(svc):
    _send(svc, [_incoming("a")])
    svc.stores.record_booked_many("acc", "ent", KIND, [{"host_id": "a", "booking_number": "24700007", "entry_id": "e-a"}], "run-1")
    calls: list[str] = []
    svc.stores.settings.meta.client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    kept, [result], _ = _send(svc, [_incoming("b", number=" f-1 "), _incoming("c", number="F-2")], "run-2")
    assert [d.host_id for d in kept] == ["c"]
    assert "delivered twice: already booked as 24700007 from document a (F-1)" in result["reason"]
    assert "Reject the duplicate" in result["hint"]
    assert calls[:2] == ["BatchGetItem", "BatchGetItem"]  # the claims, then the first one's booking record: no query, no scan


def test_same_number_other_amounts_is_a_conflict_and_another_supplier_is_not_a_repeat(svc):
    _send(svc, [_incoming("a")])
    svc.stores.record_booked_many("acc", "ent", KIND, [{"host_id": "a", "booking_number": "7", "entry_id": "e-a"}], "run-1")
    kept, [result], _ = _send(svc, [_incoming("b", "150.00"), _incoming("c", supplier="s2")], "run-2")
    assert [d.host_id for d in kept] == ["c"]
    assert result["id"] == "b" and "delivered twice" not in result["reason"]
    assert "conflicts with document a (F-1), booked as 7: the same supplier and number but other amounts (EUR 150.00 + VAT 31.50 = 181.50 here, EUR 100.00 + VAT 21.00 = 121.00 there)" in result["reason"]
    assert "EN 16931 BT-1" in result["reason"]


def test_a_claim_of_a_document_the_tool_refused_is_stale(svc):
    _send(svc, [_incoming("a")])
    svc.stores.clear_intent("acc", "ent", KIND, "a")  # refused: nothing booked
    kept, skipped, _ = _send(svc, [_incoming("b")], "run-2")
    assert [d.host_id for d in kept] == ["b"] and skipped == []
    kept, [result], _ = _send(svc, [_incoming("c")], "run-3")  # the claim is b's now
    assert kept == [] and result["duplicate_of"] == "b"


def test_within_one_step_the_first_is_sent_and_the_repeat_waits_for_its_outcome(svc):
    kept, skipped, repeats = _send(svc, [_incoming("a"), _incoming("b"), _incoming("c", number="F-2")])
    assert [d.host_id for d in kept] == ["a", "c"] and skipped == []
    assert [(r.host_id, f.host_id) for r, f in repeats] == [("b", "a")]
    from connector.models import BookingRejected, BookingResult

    booked = engine._repeat_result(repeats[0][0], repeats[0][1], BookingResult(host_id="a", booking_number="9", entry_id="e"))
    assert "delivered twice: already booked as 9 from document a (F-1)" in booked["reason"]
    refused = engine._repeat_result(repeats[0][0], repeats[0][1], BookingRejected(host_id="a", reason="period closed", hint="x"))
    assert "document a (F-1), delivered first, was not booked either: period closed" in refused["reason"]
    dry = engine._repeat_result(repeats[0][0], repeats[0][1], engine.DRY_RUN)
    assert "delivered twice: it would be booked once, from document a (F-1)" in dry["reason"]


def test_the_supplier_is_the_host_supplier_else_the_vat_number():
    doc = _incoming("a")
    assert engine.delivery_key(doc) == "company:s1#f-1"
    unlinked = doc.model_copy(update={"party": Party(host_id="ubl:BE0123456749", name="X", vat_number="BE 0123.456.749")})
    assert engine.delivery_key(unlinked) == "vat:BE0123456749#f-1"
    assert engine.delivery_key(doc.model_copy(update={"party": Party(host_id="ubl:X", name="X")})) is None
    assert engine.delivery_key(doc.model_copy(update={"number": "  "})) is None


def test_the_plan_keeps_deliveries_of_one_invoice_in_one_batch():
    batches = [["a", "b"], ["c", "d"], ["e"]]
    assert engine.same_batch(batches, {"a": "s1#f-1", "d": "s1#f-1", "e": "s1#f-1", "c": "s2#f-1"}) == [["a", "b", "d", "e"], ["c"]]
    assert engine.same_batch(batches, {}) == batches
