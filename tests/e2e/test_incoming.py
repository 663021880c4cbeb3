"""Incoming Peppol documents end to end, for each tool: every UBL example as an approved incoming
document, booked as a purchase entry whose amounts (read back from the tool) match the source file; an
unapproved expense is reported, not synced; an invoice paid in the tool shows paid in the host after the
next sync, and a payment is never taken back."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from connector.cli import main
from connector.demo import DemoEnvironment, load_folder, read_originals
from connector.models import Direction
from connector.runtime import services
from tests.e2e.test_demo_sync import SAMPLES, source_totals

TOOLS = ["exact", "octopus", "yuki"]


@pytest.fixture(scope="module", params=TOOLS)
def report(request, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp(f"incoming-{request.param}") / "report.json"
    args = ["demo", "--tool", request.param, "--direction", "incoming", "--documents", str(SAMPLES), "--report", str(out), "--resync"]
    assert main(args) == 0
    return json.loads(out.read_text())


@pytest.mark.e2e
def test_every_booked_purchase_entry_matches_its_source(report):
    first, second = report["runs"]
    files = sorted(SAMPLES.glob("*.xml"))
    booked = [d for d in first["documents"] if d["status"] == "synced"]
    for doc in booked:
        expected = source_totals(SAMPLES / doc["source"])
        assert (doc["currency"], Decimal(doc["net"]), Decimal(doc["vat"]), Decimal(doc["gross"])) == (expected["currency"], expected["net"], expected["vat"], expected["gross"]), doc["source"]
    assert all(d["reason"] for d in first["documents"] if d["status"] == "skipped")
    assert len(booked) >= len(files) - 6, [(d["source"], d["reason"]) for d in first["documents"] if d["status"] == "skipped"]
    if len(files) == 30:
        assert len(booked) >= 24
    assert second["api_calls"]["writes"] == 0
    assert {d["source"] for d in second["documents"] if d["status"] == "synced"} == set()


def _pay_in_tool(tool: str, sandbox, entry_id: str, reference: str) -> None:
    if tool == "exact":
        sandbox.mark_paid(entry_id)
    elif tool == "octopus":
        bookyear, journal, seq = entry_id.split("/")
        sandbox.mark_paid(1001, int(bookyear), journal, int(seq))
    else:
        sandbox.mark_paid(entry_id)


@pytest.mark.e2e
@pytest.mark.parametrize("tool", TOOLS)
def test_paid_in_the_tool_becomes_paid_in_the_host_and_is_never_unpaid(tool):
    chosen = {"xrechnung-03.06a-INVOICE_ubl.xml", "en16931-ubl-tc434-example1.xml"}
    docs = [d for d in load_folder(SAMPLES, Direction.INCOMING) if d.source in chosen]
    with DemoEnvironment(docs, tools=(tool,), originals=read_originals(SAMPLES)) as env:
        entity = env.entities[0]
        # One more expense that nobody approved yet: reported, not synced.
        pending_id = env.host.add_incoming_document(
            entity.entity_id, title="not approved", document_number="P-1", document_date=docs[0].issue_date,
            tax_exclusive="10", tax_inclusive="12.10", review_status="pending",
        )
        first = env.sync(entity)
        assert {d.status for d in first.documents} == {"synced"}
        waiting = [r for r in services().stores.get_results(first.run_id, "incoming_invoices") if r["outcome"] == "not_synced"]
        assert [r["id"] for r in waiting] == [pending_id] and waiting[0]["reason"] == "not synced yet: approve it first"
        component = next(c for c in first.components if c["name"] == "incoming_invoices")
        assert component["skipped"] == 0  # waiting for approval is not a failure (status Success, with details)
        flagged = [d for d in first.documents if d.flag]
        assert component["status"] == ("Warning" if flagged else "Success")
        for item in entity.loaded:
            incoming = env.host.incoming_document(item.host_id)
            assert incoming["booking_number"] and env.host.documents is not None

        paid, unpaid = entity.loaded[0], entity.loaded[1]
        record = services().stores.get_bookings(env.account_id, entity.entity_id, "incoming_invoice", [paid.host_id])[paid.host_id]
        _pay_in_tool(tool, entity.sandbox, record["entry_id"], paid.number)
        env.sync(entity)
        assert env.host.incoming_document(paid.host_id)["payment_status"] == "paid"
        assert env.host.incoming_document(unpaid.host_id)["payment_status"] != "paid"
        env.sync(entity)  # nothing changes in the tool: still paid, no second payment
        assert env.host.incoming_document(paid.host_id)["payment_status"] == "paid"
