"""Dry run (issue 10): every component up to the write; per document the entry it would book or why not;
nothing written to the tool or the host; the proposed entries equal what the real run then books."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.clock import ScaledClock, set_clock
from connector.faults import drive, synthetic_documents, tool_world
from connector.models import DocumentKind, DocumentTotals


@pytest.fixture(autouse=True)
def scaled_clock():
    previous = set_clock(ScaledClock(600.0))
    yield
    set_clock(previous)


@pytest.mark.parametrize("tool", ["exact", "octopus", "yuki"])
def test_dry_run_writes_nothing_and_proposes_what_the_real_run_books(tool):
    docs = synthetic_documents(24)
    t = docs[5].totals
    docs[5] = docs[5].model_copy(update={"totals": DocumentTotals(net=t.net + 1, vat=t.vat, gross=t.gross + 1, payable=t.payable + 1)})
    with tool_world(tool, docs, None, batch_size=10) as world:
        svc = world.services
        before = world.sandbox.calls()
        dry = drive(svc, world.account_id, world.entity_id, dry_run=True)
        after = world.sandbox.calls()
        assert after["writes"] == before["writes"]  # counted by the tool's sandbox
        run = svc.stores.get_run(dry)
        assert run["dry_run"] is True and run["status"] == "Warning"
        results = {r["id"]: r for r in svc.stores.get_results(dry) if r.get("kind")}
        assert not any(world.host.booking_number("invoice" if i.kind == DocumentKind.INVOICE else "creditNote", i.host_id) for i in world.loaded)
        proposed = {i: r["proposed"] for i, r in results.items() if r["outcome"] == "would_sync"}
        skipped = [r for r in results.values() if r["outcome"] == "skipped"]
        assert len(proposed) == 23 and len(skipped) == 1 and "don't add up" in skipped[0]["reason"]
        sample = next(iter(proposed.values()))
        assert {"journal", "relation", "lines", "net", "vat", "gross"} <= set(sample) and sample["lines"][0]["gl_account"]

        real = drive(svc, world.account_id, world.entity_id)
        adapter = svc.adapter_for(svc.stores.get_entity(world.account_id, world.entity_id))
        for kind in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE):
            records = svc.stores.get_bookings(world.account_id, world.entity_id, f"outgoing_{kind.value}", list(proposed))
            booked = adapter.read_bookings([r["entry_id"] for r in records.values()], kind)
            for host_id, record in records.items():
                entry, plan = booked[record["entry_id"]], proposed[host_id]
                assert (entry.net, entry.vat, entry.gross) == (Decimal(plan["net"]), Decimal(plan["vat"]), Decimal(plan["gross"]))
                if entry.lines:
                    assert sorted((l.gl_account, l.net_amount, l.vat_amount) for l in entry.lines) == sorted((l["gl_account"], Decimal(l["net"]), Decimal(l["vat"])) for l in plan["lines"])
        assert svc.stores.get_run(real)["dry_run"] is False
