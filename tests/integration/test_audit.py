"""Books-agree audit (issue 10): after each sync the documents the host has as synced are checked
against the tool's entries; an entry deleted and one edited by a bookkeeper in the tool are found."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.clock import ScaledClock, set_clock
from connector.faults import drive, synthetic_documents, tool_world
from connector.models import DocumentKind


@pytest.fixture(autouse=True)
def scaled_clock():
    previous = set_clock(ScaledClock(600.0))
    yield
    set_clock(previous)


def _tamper(world, deleted: dict, edited: dict) -> None:
    sandbox, conn = world.sandbox, world.connection
    if world.tool == "exact":
        sandbox.bookkeeper_delete(deleted["entry_id"])
        sandbox.bookkeeper_edit(edited["entry_id"], "10.00")
    elif world.tool == "octopus":
        year, journal, seq = deleted["entry_id"].split("/")
        sandbox.bookkeeper_delete(conn["dossier_id"], int(year), journal, int(seq))
        year, journal, seq = edited["entry_id"].split("/")
        sandbox.bookkeeper_edit(conn["dossier_id"], int(year), journal, int(seq), "10.00")
    else:
        sandbox.bookkeeper_delete(conn["administration_id"], deleted["entry_id"])
        sandbox.bookkeeper_edit(conn["administration_id"], edited["entry_id"], "10.00")


@pytest.mark.parametrize("tool", ["exact", "octopus", "yuki"])
def test_the_audit_agrees_after_a_sync_and_finds_a_deleted_and_an_edited_entry(tool):
    with tool_world(tool, synthetic_documents(16), None, batch_size=10) as world:
        svc = world.services
        first = svc.stores.get_run(drive(svc, world.account_id, world.entity_id))
        audit = first["audit"]
        assert audit["documents"] == 16 and audit["agree"] == 16 and audit["differences"] == []
        assert audit["host"] == audit["tool"] and sum(t["count"] for t in audit["host"]) == 16

        invoices = [i for i in world.loaded if i.kind == DocumentKind.INVOICE]
        records = svc.stores.get_bookings(world.account_id, world.entity_id, "outgoing_invoice", [i.host_id for i in invoices[:2]])
        deleted, edited = records[invoices[0].host_id], records[invoices[1].host_id]
        _tamper(world, deleted, edited)

        second = svc.stores.get_run(drive(svc, world.account_id, world.entity_id))["audit"]
        assert second["documents"] == 16 and second["agree"] == 14
        found = {d["kind"]: d for d in second["differences"]}
        assert set(found) == {"missing_in_tool", "amounts_changed"}
        assert found["missing_in_tool"]["document_id"] == invoices[0].host_id and found["missing_in_tool"]["hint"]
        assert found["amounts_changed"]["document_id"] == invoices[1].host_id and "tool" in found["amounts_changed"]["detail"]
        assert Decimal(second["tool"][0]["net"]) != Decimal(second["host"][0]["net"])


def test_an_entry_two_host_documents_point_at_is_counted_once():
    """Two host documents with one entry's booking number (a delivery booked once, numbered twice): the
    tool holds that entry once, so the audit counts it once and names the second document."""
    from connector.sync.engine import audit_books

    with tool_world("yuki", synthetic_documents(4), None, batch_size=10) as world:
        svc = world.services
        run_id = drive(svc, world.account_id, world.entity_id)
        first, second = [i for i in world.loaded if i.kind == DocumentKind.INVOICE][:2]
        records = svc.stores.get_bookings(world.account_id, world.entity_id, "outgoing_invoice", [first.host_id, second.host_id])
        shared = records[first.host_id]
        svc.stores.record_booked(world.account_id, world.entity_id, "outgoing_invoice", second.host_id, booking_number=shared["booking_number"], entry_id=shared["entry_id"], run_id="older")
        svc.host_for(svc.stores.get_entity(world.account_id, world.entity_id)).register_booking(DocumentKind.INVOICE, second.host_id, shared["booking_number"])

        audit = audit_books(svc, run_id)
        [host], [tool] = audit["host"], audit["tool"]
        assert audit["documents"] == 4 and host["count"] == 4 and tool["count"] == 3
        assert audit["agree"] == 3
        [difference] = audit["differences"]
        assert difference["kind"] == "shares_entry" and difference["document_id"] == second.host_id and first.host_id in difference["detail"]
        entries = world.services.adapter_for(svc.stores.get_entity(world.account_id, world.entity_id)).read_bookings(
            [r["entry_id"] for r in records.values()], DocumentKind.INVOICE, lines=False)
        assert Decimal(tool["gross"]) == Decimal(host["gross"]) - entries[records[second.host_id]["entry_id"]].gross


@pytest.mark.parametrize("tool", ["exact", "octopus"])
def test_the_hint_names_the_side_that_changed(tool):
    """A document edited in the host after booking and an entry edited in the tool: each hint says which
    side changed (the booking record keeps the totals booked)."""
    with tool_world(tool, synthetic_documents(6), None, batch_size=10) as world:
        svc = world.services
        drive(svc, world.account_id, world.entity_id)
        in_host, in_tool, _ = [i for i in world.loaded if i.kind == DocumentKind.INVOICE][:3]
        world.host.edit_line(in_host.host_id, 0, net_amount=Decimal("1.00"))
        record = svc.stores.get_bookings(world.account_id, world.entity_id, "outgoing_invoice", [in_tool.host_id])[in_tool.host_id]
        if tool == "exact":
            world.sandbox.bookkeeper_edit(record["entry_id"], "10.00")
        else:
            year, journal, seq = record["entry_id"].split("/")
            world.sandbox.bookkeeper_edit(world.connection["dossier_id"], int(year), journal, int(seq), "10.00")

        from connector.sync.engine import audit_books

        run_id = svc.stores.list_runs(world.account_id, world.entity_id)[0]["run_id"]
        found = {d["document_id"]: d for d in audit_books(svc, run_id)["differences"] if d["kind"] == "amounts_changed"}
        assert set(found) == {in_host.host_id, in_tool.host_id}, found
        assert "changed in the host product after it was booked" in found[in_host.host_id]["hint"]
        assert "accounting tool" not in found[in_host.host_id]["hint"].split(";")[0]
        assert found[in_tool.host_id]["hint"].startswith("Someone changed the entry in the accounting tool")


def test_a_record_without_the_booked_totals_names_neither_side():
    """Booked before the totals were kept: the host's ``updated_at`` moved (a payment does that too), so
    the hint can't tell which side changed and says so."""
    from types import SimpleNamespace

    from connector.sync.engine import _changed_hint

    entry = SimpleNamespace(net=Decimal("10.00"), gross=Decimal("12.10"))
    row = {"totals": {"net": Decimal("100.00"), "gross": Decimal("121.00")}, "updated_at": "2025-03-02T10:00:00+00:00"}
    hint = _changed_hint({"source_updated_at": "2025-03-01T10:00:00+00:00"}, row, entry)
    assert hint.startswith("The amounts differ between the host product and the accounting tool")
    assert _changed_hint({"booked_net": "100.00", "booked_gross": "121.00"}, row, entry).startswith("Someone changed the entry in the accounting tool")
    both = _changed_hint({"booked_net": "50.00", "booked_gross": "60.50"}, row, entry)
    assert both.startswith("Both changed since it was booked")
