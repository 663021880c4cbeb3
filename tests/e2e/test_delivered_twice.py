"""A supplier invoice delivered twice (two approved Peppol documents of one supplier with one number,
EN 16931 BT-1) is booked once, on every tool: the second delivery is skipped naming the first one and
its booking number, within one sync and when it arrives with a later sync; another invoice under the same
supplier and number with other amounts is a conflict, not booked either; the audit counts what the tool
holds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.demo import DemoEnvironment
from connector.models import Direction
from connector.runtime import services
from connector.sandbox.loader import load_documents
from connector.ubl import parse_ubl_file
from tests.e2e.test_demo_sync import SAMPLES

TOOLS = ["exact", "octopus", "yuki"]
SOURCE = "en16931-ubl-tc434-example1.xml"
OTHER = "xrechnung-03.06a-INVOICE_ubl.xml"


def _results(run_id: str) -> dict[str, dict]:
    return {r["id"]: r for r in services().stores.get_results(run_id, "incoming_invoices")}


@pytest.mark.e2e
@pytest.mark.parametrize("tool", TOOLS)
def test_a_supplier_invoice_delivered_twice_is_booked_once(tool):
    doc = parse_ubl_file(SAMPLES / SOURCE, direction=Direction.INCOMING)
    originals = {SOURCE: (SAMPLES / SOURCE).read_bytes()}
    with DemoEnvironment([doc, doc], tools=(tool,), originals=originals) as env:
        entity = env.entities[0]
        run = env.sync(entity)
        results = _results(run.run_id)
        # whichever the host lists first is booked (the order of its list is its own)
        first, second = sorted(entity.loaded, key=lambda item: results[item.host_id]["outcome"] != "synced")
        assert results[first.host_id]["outcome"] == "synced"
        booking_number = results[first.host_id]["booking_number"]
        skipped = results[second.host_id]
        assert skipped["outcome"] == "skipped"
        assert f"incoming invoice {doc.number}" in skipped["reason"] and "delivered twice" in skipped["reason"]
        assert f"already booked as {booking_number} from document {first.host_id}" in skipped["reason"]
        assert "Reject the duplicate" in skipped["hint"]
        assert env.host.incoming_document(second.host_id)["booking_number"] is None
        gross = str(doc.totals.gross)
        assert [(t["count"], Decimal(t["gross"])) for t in run.audit["tool"]] == [(1, Decimal(gross))]
        assert run.audit["agree"] == 1 and run.audit["differences"] == []

        # The next night the supplier's invoice arrives once more: skipped again, naming the first one.
        # With it, another invoice of that supplier under the same number but other amounts: a conflict.
        [third] = load_documents(env.host, env.account_id, entity.entity_id, [doc], company_currency="EUR", originals=originals)
        other = parse_ubl_file(SAMPLES / OTHER, direction=Direction.INCOMING)
        clash = other.model_copy(update={"number": doc.number, "party": doc.party, "source": "clash.xml"})
        xml = (SAMPLES / OTHER).read_bytes().replace(f"<cbc:ID>{other.number}</cbc:ID>".encode(), f"<cbc:ID>{doc.number}</cbc:ID>".encode(), 1)
        [conflict] = load_documents(env.host, env.account_id, entity.entity_id, [clash], company_currency="EUR", originals={"clash.xml": xml})
        night = env.sync(entity)
        results = _results(night.run_id)
        for repeat in (second.host_id, third.host_id):
            assert results[repeat]["outcome"] == "skipped"
            assert f"already booked as {booking_number} from document {first.host_id}" in results[repeat]["reason"]
        reason = results[conflict.host_id]["reason"]
        assert results[conflict.host_id]["outcome"] == "skipped" and "delivered twice" not in reason
        assert f"conflicts with document {first.host_id} ({doc.number}), booked as {booking_number}" in reason and "BT-1" in reason
        assert f"(EUR {other.totals.net} + VAT {other.totals.vat} = {other.totals.gross} here, EUR {doc.totals.net} + VAT {doc.totals.vat} = {gross} there)" in reason
        assert "credit note" in results[conflict.host_id]["hint"]
        assert [(t["count"], Decimal(t["gross"])) for t in night.audit["tool"]] == [(1, Decimal(gross))]
        assert night.audit["agree"] == 1
        records = services().stores.get_bookings(env.account_id, entity.entity_id, "incoming_invoice", [first.host_id, second.host_id, third.host_id, conflict.host_id])
        assert set(records) == {first.host_id}


@pytest.mark.e2e
def test_a_repeat_of_an_invoice_booked_before_claims_were_kept_is_not_booked_again():
    """The first delivery was booked by a version that wrote no delivery claim: the plan sees the booked
    one and its repeat of one supplier and number in the host's list and writes the missing claim, so
    the repeat is skipped naming it."""
    from boto3.dynamodb.conditions import Key

    from connector.stores.dynamodb import entity_key

    doc = parse_ubl_file(SAMPLES / SOURCE, direction=Direction.INCOMING)
    originals = {SOURCE: (SAMPLES / SOURCE).read_bytes()}
    with DemoEnvironment([doc], tools=("exact",), originals=originals) as env:
        entity = env.entities[0]
        [first] = entity.loaded
        booking_number = _results(env.sync(entity).run_id)[first.host_id]["booking_number"]
        settings = services().stores.settings
        pk = entity_key(env.account_id, entity.entity_id)
        claims = settings.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with("DLV#"))["Items"]
        assert len(claims) == 1
        settings.delete_item(Key={"pk": pk, "sk": claims[0]["sk"]})  # as an older version left it

        [again] = load_documents(env.host, env.account_id, entity.entity_id, [doc], company_currency="EUR", originals=originals)
        night = env.sync(entity)
        result = _results(night.run_id)[again.host_id]
        assert result["outcome"] == "skipped"
        assert f"delivered twice: already booked as {booking_number} from document {first.host_id}" in result["reason"]
        assert [t["count"] for t in night.audit["tool"]] == [1]
