"""The Octopus adapter's purchase side (suppliers, A journals, find by supplier) and payment states,
against the Octopus simulator (accounting-apis.md §2.4-§2.7, §2.9)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connector.adapters import AdapterContext
from connector.adapters.octopus import create_adapter
from connector.booking import build_entry
from connector.models import (
    Address,
    BookedRef,
    BookingEntry,
    BookingLine,
    BookingRejected,
    BookingResult,
    Direction,
    Document,
    DocumentAllowanceCharge,
    DocumentKind,
    DocumentLine,
    DocumentTotals,
    IntegrationSettings,
    Party,
    PaymentState,
    Tool,
    VatSubtotal,
)
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.octopus import OctopusSandbox, demo_administration
from connector.sandbox.server import LoopbackServer
from connector.stores.memory import MemoryCredentialStore
from tests.fakes import VAT21
from tests.unit.test_octopus_adapter import World, entry, line, party


@pytest.fixture
def world(clock):
    w = World(clock)
    yield w
    w.adapter.close()


def cost(gl: str = "600001", vat: str = "D21", pct: str = "21", net: str = "100.00", tax: str = "21.00") -> BookingLine:
    return line(gl, vat, pct, net, tax)


def bill(host_id: str, supplier: str, *, ref: str = "SUP-001", kind: DocumentKind = DocumentKind.INVOICE,
         journal: str | None = None, lines: tuple[BookingLine, ...] | None = None, **extra: Any) -> BookingEntry:
    """A purchase entry (incoming) of 100 + 21 and 50 + 3 on cost accounts, A1 (invoice) / A2 (credit note)."""
    journal = journal or ("A2" if kind is DocumentKind.CREDIT_NOTE else "A1")
    lines = lines or (cost(), cost("600002", "D06", "6", "50.00", "3.00"))
    return entry(host_id, supplier, kind=kind, ref=ref, journal=journal, direction=Direction.INCOMING, lines=lines,
                 **extra)


def supplier(world: World, host_id: str = "s1", name: str = "Supplies NV", number: str = "4001",
             **extra: Any) -> str:
    relation = world.adapter.ensure_relations([party(host_id, name, number, **extra)], customer=False)[host_id]
    assert isinstance(relation, str)
    return relation


def relations_by_id(world: World) -> dict[str, dict[str, Any]]:
    return {str(r["relationIdentificationServiceData"]["relationKey"]["id"]): r
            for r in world.sandbox.relations(world.dossier)}


# ------------------------------------------------------------------------------------------ bookings


def test_purchase_invoice_and_credit_note_in_a_journals(world):
    adapter, sandbox = world.adapter, world.sandbox
    relation = supplier(world, vat_number="BE0477.472.701", vat_type="vat_liable")
    row = relations_by_id(world)[relation]
    assert (row["supplier"], row["client"]) == (True, False)
    invoice = bill("b1", relation, ref="F2025-0042")
    credit = bill("pcn1", relation, ref="CN-7", kind=DocumentKind.CREDIT_NOTE, lines=(cost(net="40.00", tax="8.40"),))
    assert adapter.post_bookings([invoice, credit]) == [
        BookingResult(host_id="b1", booking_number="1", entry_id="2/A1/1"),
        BookingResult(host_id="pcn1", booking_number="1", entry_id="2/A2/1"),
    ]
    stored = {b["journalKey"]: b for b in sandbox.bookings(world.dossier)}
    a1, a2 = stored["A1"], stored["A2"]
    assert (a1["amount"], a1["reference"], a1["relationIdentificationServiceData"]["relationKey"]["id"]) == (
        Decimal("174.00"), "F2025-0042", int(relation))
    assert [(ln["accountKey"], ln["vatCodeKey"], ln["baseAmount"]) for ln in a1["bookingLines"]] == [
        (600001, "D21", Decimal("100.00")), (600002, "D06", Decimal("50.00"))]
    assert a2["amount"] == Decimal("-48.40")  # purchase credit note: negative total, positive lines (§2.6)
    assert [(ln["baseAmount"], ln["vatAmount"]) for ln in a2["bookingLines"]] == [(Decimal("40.00"), Decimal("8.40"))]

    read = adapter.read_bookings(["2/A2/1"], DocumentKind.CREDIT_NOTE, Direction.INCOMING)["2/A2/1"]
    assert (read.net, read.vat, read.gross, read.reference) == (
        Decimal("40.00"), Decimal("8.40"), Decimal("48.40"), "CN-7")  # back in the document's sign
    assert [(ln.gl_account, ln.vat_code, ln.vat_percentage) for ln in read.lines] == [("600001", "D21", Decimal("21"))]
    assert adapter.read_bookings(["2/A1/1"], DocumentKind.INVOICE, direction=Direction.INCOMING)["2/A1/1"].gross == \
        Decimal("174.00")


def test_negative_purchase_documents_flip_the_sign_both_ways(world):
    adapter, sandbox = world.adapter, world.sandbox
    relation = supplier(world)
    negative_invoice = bill("neg-inv", relation, ref="N-1", lines=(cost(net="-50.00", tax="-10.50"),))
    negative_credit = bill("neg-cn", relation, ref="N-2", kind=DocumentKind.CREDIT_NOTE,
                           lines=(cost(net="-20.00", tax="-4.20"),))
    assert all(isinstance(r, BookingResult) for r in adapter.post_bookings([negative_invoice, negative_credit]))
    stored = {b["reference"]: b for b in sandbox.bookings(world.dossier)}
    assert stored["N-1"]["amount"] == Decimal("-60.50")  # booked like a credit note
    assert stored["N-1"]["bookingLines"][0]["baseAmount"] == Decimal("50.00")
    assert stored["N-2"]["amount"] == Decimal("24.20")  # booked like an invoice
    assert stored["N-2"]["bookingLines"][0]["baseAmount"] == Decimal("20.00")
    assert adapter.read_bookings(["2/A1/1"], DocumentKind.INVOICE, Direction.INCOMING)["2/A1/1"].gross == \
        Decimal("-60.50")
    back = adapter.read_bookings(["2/A2/1"], DocumentKind.CREDIT_NOTE, Direction.INCOMING)["2/A2/1"]
    assert (back.gross, back.lines[0].net_amount) == (Decimal("-24.20"), Decimal("-20.00"))


def test_purchase_numbering_wrong_side_and_closed_period(world):
    adapter, sandbox = world.adapter, world.sandbox
    sandbox.add_journal(world.dossier, 2, "A7", "Numbered purchases", last_doc=9)
    relation = supplier(world)
    results = adapter.post_bookings([bill("b1", relation, journal="A7"), bill("b2", relation, journal="A7", ref="X")])
    assert [r.booking_number for r in results] == ["10", "11"]
    writes = adapter.calls["writes"]
    wrong = adapter.post_bookings([bill("b3", relation, journal="V1")])[0]
    assert isinstance(wrong, BookingRejected) and adapter.calls["writes"] == writes  # refused before posting
    assert wrong.reason == "journal V1 is a sales (V) journal in Octopus: incoming invoices need a purchase (A) journal"
    sales_code = adapter.post_bookings([bill("b4", relation, lines=(line(),))])[0]
    assert isinstance(sales_code, BookingRejected) and "is a sales code" in sales_code.reason
    sandbox.close_period(world.dossier, 2, 202503, journal="A1")
    closed = adapter.post_bookings([bill("b5", relation)])[0]
    assert isinstance(closed, BookingRejected)
    assert closed.reason == "the booking period 2025/03 of journal A1 is closed in Octopus"
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    assert isinstance(adapter.post_bookings([entry("inv", customer)])[0], BookingResult)  # V1 still open
    edited = bill("b1", relation, journal="A7", lines=(cost(net="10.00", tax="2.10"),), entry_date=date(2025, 4, 1))
    assert adapter.update_bookings([(edited, "2/A7/10")]) == [
        BookingResult(host_id="b1", booking_number="10", entry_id="2/A7/10")]


# ----------------------------------------------------------------------------------------- suppliers


def test_supplier_matched_by_vat_number_never_duplicated(world):
    adapter, sandbox = world.adapter, world.sandbox
    manual = sandbox.add_relation(world.dossier, "Supplies (typed by the accountant)", vat_nr="be 0477 472 701",
                                  client=True, city="Antwerpen")
    sandbox.add_relation(world.dossier, "Old Supplies", vat_nr="BE0477472701", client=False, supplier=True,
                         active=False)
    host = party("s1", "Supplies NV", "4001", vat_number="BE0477.472.701", vat_type="vat_liable",
                 address=Address(city="Gent", country="BE"))
    assert adapter.ensure_relations([host], customer=False) == {"s1": str(manual)}
    assert adapter.calls == {"reads": 1, "writes": 1}  # found by VAT number; only the supplier flag written
    row = relations_by_id(world)[str(manual)]
    assert (row["client"], row["supplier"], row["name"], row["city"]) == (
        True, True, "Supplies (typed by the accountant)", "Antwerpen")  # nothing else touched
    assert row["relationIdentificationServiceData"]["externalRelationId"] is None
    again = world.new_adapter()
    assert again.ensure_relations([host], customer=False) == {"s1": str(manual)}
    assert again.calls == {"reads": 1, "writes": 0}
    assert len(sandbox.relations(world.dossier)) == 2


def test_vat_match_prefers_our_relation_then_a_supplier(world):
    adapter, sandbox = world.adapter, world.sandbox
    sandbox.add_relation(world.dossier, "A customer", vat_nr="NL123456789B01", client=True)
    flagged = sandbox.add_relation(world.dossier, "The supplier", vat_nr="NL 123456789 B01", client=False,
                                   supplier=True)
    host = party("s9", "Dutch BV", "4009", vat_number="NL123456789B01", vat_type="intra_community")
    assert adapter.ensure_relations([host], customer=False) == {"s9": str(flagged)}
    assert adapter.calls == {"reads": 1, "writes": 0}
    ours = sandbox.add_relation(world.dossier, "Dutch BV", external_id=4009, vat_nr="NL123456789B01", client=False,
                                supplier=True, vatType=4)
    fresh = world.new_adapter()
    assert fresh.ensure_relations([host], customer=False) == {"s9": str(ours)}
    renamed = party("s9", "Dutch BV (renamed)", "4009", vat_number="NL123456789B01", vat_type="intra_community")
    assert fresh.ensure_relations([renamed], customer=False) == {"s9": str(ours)}
    assert relations_by_id(world)[str(ours)]["name"] == "Dutch BV (renamed)"  # ours: host fields follow
    assert relations_by_id(world)[str(flagged)]["name"] == "The supplier"


def test_supplier_created_once_across_calls_and_runs(world):
    adapter, sandbox = world.adapter, world.sandbox
    with_vat = party("s1", "Supplies NV", "4001", vat_number="BE0477.472.701", vat_type="vat_liable")
    private = party("s2", "Jan Janssens", None, vat_type="private_person")
    first = adapter.ensure_relations([with_vat, private], customer=False)
    assert adapter.calls == {"reads": 3, "writes": 2}  # VAT lookup + id lookup for s1, id lookup for s2
    assert adapter.ensure_relations([with_vat, private], customer=False) == first
    assert adapter.calls == {"reads": 3, "writes": 2}
    fresh = world.new_adapter()
    assert fresh.ensure_relations([with_vat, private], customer=False) == first
    assert fresh.calls == {"reads": 2, "writes": 0}
    rows = relations_by_id(world)
    assert len(rows) == 2
    assert all((r["supplier"], r["client"]) == (True, False) for r in rows.values())
    assert rows[first["s1"]]["relationIdentificationServiceData"]["externalRelationId"] == 4001
    both = world.new_adapter().ensure_relations([with_vat], customer=True)
    assert both == {"s1": first["s1"]} and len(sandbox.relations(world.dossier)) == 2
    assert (relations_by_id(world)[first["s1"]]["client"], relations_by_id(world)[first["s1"]]["supplier"]) == (
        True, True)


# ------------------------------------------------------------------------------------- find bookings


def test_find_bookings_matches_reference_and_supplier(world):
    adapter = world.adapter
    s1 = supplier(world, "s1", "First NV", "4001")
    s2 = supplier(world, "s2", "Second NV", "4002")
    assert s1 != s2
    from_first = bill("b1", s1, ref="2025-001")
    from_second = bill("b2", s2, ref="2025-001")
    assert adapter.post_bookings([from_first])[0].entry_id == "2/A1/1"
    fresh = world.new_adapter()
    assert fresh.find_bookings([from_first, from_second]) == {
        "b1": BookingResult(host_id="b1", booking_number="1", entry_id="2/A1/1")}
    assert fresh.calls["reads"] == 1


def test_same_supplier_number_at_a_stale_identity_is_not_taken_for_ours(world):
    first, second = world.adapter, world.new_adapter()
    s1 = supplier(world, "s1", "First NV", "4001")
    s2 = second.ensure_relations([party("s2", "Second NV", "4002")], customer=False)["s2"]
    first.fetch_metadata()
    second.fetch_metadata()  # both believe A1's last number is 0
    assert first.post_bookings([bill("b1", s1, ref="2025-001")])[0].entry_id == "2/A1/1"
    other = second.post_bookings([bill("b2", s2, ref="2025-001")])[0]
    assert other == BookingResult(host_id="b2", booking_number="2", entry_id="2/A1/2")  # not "already ours"
    assert len(world.sandbox.bookings(world.dossier)) == 2
    assert world.new_adapter().find_bookings([bill("b2", s2, ref="2025-001")]) == {"b2": other}


# ------------------------------------------------------------------------------------------ payments


def test_read_payments_paid_partly_open_for_sales_and_purchases(world, clock):
    adapter, sandbox = world.adapter, world.sandbox
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    relation = supplier(world)
    sales = adapter.post_bookings([
        entry("inv-paid", customer), entry("inv-part", customer),
        entry("cn-open", customer, kind=DocumentKind.CREDIT_NOTE, journal="V2", lines=(line(net="40.00", tax="8.40"),)),
        entry("inv-2024", customer, entry_date=date(2024, 12, 1)),
    ])
    purchases = adapter.post_bookings([
        bill("b-paid", relation), bill("b-open", relation, ref="SUP-2"),
        bill("pcn-part", relation, ref="SUP-CN", kind=DocumentKind.CREDIT_NOTE, lines=(cost(net="40.00", tax="8.40"),)),
    ])
    assert [r.entry_id for r in sales + purchases] == ["2/V1/1", "2/V1/2", "2/V2/1", "1/V1/1", "2/A1/1", "2/A1/2",
                                                      "2/A2/1"]
    sandbox.mark_paid(world.dossier, 2, "V1", 1, paid_on=date(2025, 3, 20))
    sandbox.mark_paid(world.dossier, 2, "V1", 2, amount="74.00", paid_on=date(2025, 3, 21))
    sandbox.mark_paid(world.dossier, 1, "V1", 1, paid_on=date(2025, 1, 5))
    sandbox.mark_paid(world.dossier, 2, "A1", 1, paid_on=date(2025, 3, 22))
    sandbox.mark_paid(world.dossier, 2, "A2", 1, amount="8.40", paid_on=date(2025, 3, 23))
    kinds = {"cn-open": DocumentKind.CREDIT_NOTE, "pcn-part": DocumentKind.CREDIT_NOTE}
    refs = [BookedRef(host_id=r.host_id, kind=kinds.get(r.host_id, DocumentKind.INVOICE),
                      direction=Direction.INCOMING if r.entry_id.split("/")[1][0] == "A" else Direction.OUTGOING,
                      entry_id=r.entry_id, booking_number=r.booking_number, reference="")
            for r in sales + purchases]
    refs.append(BookedRef(host_id="gone", kind=DocumentKind.INVOICE, direction=Direction.OUTGOING,
                          entry_id="2/V1/99", booking_number="99", reference=""))
    refs.append(BookedRef(host_id="bad", kind=DocumentKind.INVOICE, direction=Direction.OUTGOING,
                          entry_id="nonsense", booking_number="1", reference=""))
    fresh = world.new_adapter()
    states = fresh.read_payments(refs)
    assert fresh.calls == {"reads": 2, "writes": 0}  # one feed call per book year, not per document
    assert states == {
        "2/V1/1": PaymentState(entry_id="2/V1/1", paid=True, open_amount=Decimal("0"), paid_on=date(2025, 3, 20)),
        "2/V1/2": PaymentState(entry_id="2/V1/2", paid=False, open_amount=Decimal("100.00")),
        "2/V2/1": PaymentState(entry_id="2/V2/1", paid=False, open_amount=Decimal("48.40")),  # document sign
        "1/V1/1": PaymentState(entry_id="1/V1/1", paid=True, open_amount=Decimal("0"), paid_on=date(2025, 1, 5)),
        "2/A1/1": PaymentState(entry_id="2/A1/1", paid=True, open_amount=Decimal("0"), paid_on=date(2025, 3, 22)),
        "2/A1/2": PaymentState(entry_id="2/A1/2", paid=False, open_amount=Decimal("174.00")),
        "2/A2/1": PaymentState(entry_id="2/A2/1", paid=False, open_amount=Decimal("40.00")),
    }
    only_purchases = [r for r in refs if r.direction is Direction.INCOMING]
    assert fresh.read_payments(only_purchases) == {k: v for k, v in states.items() if "/A" in k}
    assert fresh.calls["reads"] == 3
    sandbox.undo_payments(world.dossier, 2, "A1", 1)  # un-reconciled in Octopus: reported as it is
    assert fresh.read_payments(only_purchases)["2/A1/1"] == PaymentState(
        entry_id="2/A1/1", paid=False, open_amount=Decimal("174.00"))
    assert fresh.read_payments([]) == {}


# ---------------------------------------------------------------------------------------------- demo


def purchase_document(host_id: str, kind: DocumentKind = DocumentKind.INVOICE) -> Document:
    """An incoming document of 100.00 at 21 % less a 10.00 discount: 90.00 + 18.90 = 108.90."""
    return Document(
        host_id=host_id, kind=kind, direction=Direction.INCOMING, number=f"SUP/{host_id}", issue_date=date(2025, 3, 4),
        currency="EUR", party=Party(host_id="sup-1", name="Supplies NV", customer_number="4001",
                                    vat_number="BE0477472701", vat_type="vat_liable"),
        lines=(DocumentLine(description="Paper", net_amount=Decimal("100.00"), vat_rate_id=VAT21.id),),
        allowance_charges=(DocumentAllowanceCharge(is_charge=False, amount=Decimal("10.00"), reason="Loyalty",
                                                   vat_rate_id=VAT21.id),),
        vat_breakdown=(VatSubtotal(vat_rate_id=VAT21.id, taxable_amount=Decimal("90.00"),
                                   vat_amount=Decimal("18.90")),),
        vat_rates=(VAT21,),
        totals=DocumentTotals(net=Decimal("90.00"), vat=Decimal("18.90"), gross=Decimal("108.90"),
                              payable=Decimal("108.90")),
    )


def test_demo_administration_books_a_purchase(clock):
    request = AdminRequest(rates=(HostRate(VAT21.id, VAT21.description, VAT21.percentage, VAT21.category),),
                           currencies=frozenset({"EUR"}), years=(2025,))
    sandbox = OctopusSandbox()
    admin = demo_administration(sandbox, request)
    with LoopbackServer(sandbox) as server:
        ctx = AdapterContext(tool="octopus", connection=admin.connection,
                             credentials=MemoryCredentialStore(admin.credentials),
                             app_secret=lambda: admin.app_secret, base_url=server.url)
        adapter = create_adapter(ctx)
        settings = IntegrationSettings(
            tool=Tool.OCTOPUS, start_date=date(2025, 1, 1), journals=admin.journals, vat_codes=admin.vat_codes,
            ledger_accounts=admin.ledger_accounts, discount_ledger_accounts=admin.discount_ledger_accounts,
            purchase_vat_codes=admin.purchase_vat_codes, expense_ledger_accounts=admin.expense_ledger_accounts,
            purchase_discount_ledger_accounts=admin.purchase_discount_ledger_accounts)
        metadata = adapter.fetch_metadata()
        docs = [purchase_document("p1"), purchase_document("p2", DocumentKind.CREDIT_NOTE)]
        relation = adapter.ensure_relations([docs[0].party], customer=False)["sup-1"]
        assert isinstance(relation, str)
        entries = [build_entry(doc, settings, metadata, relation) for doc in docs]
        assert all(isinstance(e, BookingEntry) for e in entries), entries
        results = adapter.post_bookings(entries)
        assert [r.entry_id for r in results] == ["1/A1/1", "1/A2/1"]
        stored = sandbox.bookings(admin.connection["dossier_id"])
        assert [b["amount"] for b in stored] == [Decimal("108.90"), Decimal("-108.90")]
        assert [(ln["accountKey"], ln["vatCodeKey"], ln["baseAmount"]) for ln in stored[0]["bookingLines"]] == [
            (600001, "D21", Decimal("100.00")), (608000, "D21", Decimal("-10.00"))]
        sales_link = settings.model_copy(update={"purchase_vat_codes": admin.vat_codes})
        refused = build_entry(docs[0], sales_link, metadata, relation)
        assert not isinstance(refused, BookingEntry) and "sales only" in refused.reason  # a sales code on purchases
        adapter.close()
