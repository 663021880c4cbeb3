"""Octopus only (seed 001/004): an invoice edited in the host after it was synced is pushed again as an
update of its booking; when its period is closed in Octopus it is skipped with that reason."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.clock import get_clock
from connector.demo import DemoEnvironment, load_folder
from connector.local.stack import PROJECT_ROOT
from connector.runtime import services
from connector.sandbox.octopus import DEMO_DOSSIER

SAMPLES = PROJECT_ROOT / "sample_data" / "ubl"
FILES = {"xrechnung-03.06a-INVOICE_ubl.xml", "xrechnung-01.13a-INVOICE_ubl.xml", "en16931-ubl-tc434-example1.xml"}


@pytest.mark.e2e
def test_edited_invoice_is_pushed_again_and_a_closed_period_skips_it():
    docs = [d for d in load_folder(SAMPLES) if d.source in FILES]
    with DemoEnvironment(docs, tools=("octopus",)) as env:
        entity = env.entities[0]
        first = env.sync(entity)
        assert {d.status for d in first.documents} == {"synced"}
        by_source = {item.source: item for item in entity.loaded}
        edited, frozen = by_source["xrechnung-03.06a-INVOICE_ubl.xml"], by_source["xrechnung-01.13a-INVOICE_ubl.xml"]
        numbers = {d.source: d.booking_number for d in first.documents}

        stores = services().stores
        records = stores.get_bookings(env.account_id, entity.entity_id, "outgoing_invoice", [frozen.host_id])
        bookyear = int(records[frozen.host_id]["entry_id"].split("/")[0])
        frozen_date = next(d.issue_date for d in docs if d.source == frozen.source)
        entity.sandbox.close_period(DEMO_DOSSIER, bookyear, frozen_date.year * 100 + frozen_date.month)

        get_clock().advance(5)  # the edit happens later than the booking
        env.host.edit_line(edited.host_id, 0, net_amount=Decimal("1010.00"))
        env.host.edit_line(frozen.host_id, 0, net_amount=Decimal("999.00"))
        expected_gross = Decimal(str(env.host.invoice(edited.host_id)["total"]["tax_inclusive"]["amount"]))

        second = env.sync(entity)
        result = {d.source: d for d in second.documents}
        assert result[edited.source].status == "synced"
        assert result[edited.source].booking_number == numbers[edited.source]  # same booking, updated
        assert Decimal(result[edited.source].gross) == expected_gross
        assert result[frozen.source].status == "skipped" and "closed" in result[frozen.source].reason
        assert result["en16931-ubl-tc434-example1.xml"].status == "already_synced"
        assert len(entity.sandbox.bookings(DEMO_DOSSIER)) == 3  # updated in place, nothing booked twice


@pytest.mark.e2e
def test_a_payment_registered_in_the_host_is_not_pushed_as_an_edit():
    """The host's ``updated_at`` moves when a payment is registered (host-api.md §4.4); what the entry books
    did not change, so the booking is not updated (the record's digest of the booked entry says so) and the
    next sync does not look at it again."""
    docs = [d for d in load_folder(SAMPLES) if d.source in FILES]
    with DemoEnvironment(docs, tools=("octopus",)) as env:
        entity = env.entities[0]
        env.sync(entity)
        paid = next(item for item in entity.loaded if item.source == "xrechnung-03.06a-INVOICE_ubl.xml")
        before = services().stores.get_bookings(env.account_id, entity.entity_id, "outgoing_invoice", [paid.host_id])[paid.host_id]
        get_clock().advance(5)
        env.host.mark_paid(paid.host_id)

        second = env.sync(entity)
        [result] = [r for r in services().stores.get_results(second.run_id, "outgoing_invoices") if r["id"] == paid.host_id]
        assert result["outcome"] == "already_synced", result
        assert "nothing to update" in result["detail"]
        after = services().stores.get_bookings(env.account_id, entity.entity_id, "outgoing_invoice", [paid.host_id])[paid.host_id]
        assert after["source_updated_at"] != before["source_updated_at"] and after["content_digest"] == before["content_digest"]
        assert after["run_id"] == before["run_id"] and after["booking_number"] == before["booking_number"]  # the record is not rewritten

        third = env.sync(entity)
        [again] = [r for r in services().stores.get_results(third.run_id, "outgoing_invoices") if r["id"] == paid.host_id]
        assert again["outcome"] == "already_synced" and "detail" not in again  # listed as synced by the plan, not read again
