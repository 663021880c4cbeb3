"""The Yuki adapter's purchase side (incoming Peppol documents) and payment status, against the sandbox."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.adapters import AdapterContext
from connector.adapters.yuki import create_adapter
from connector.models import (
    BookedRef,
    BookingRejected,
    BookingResult,
    Direction,
    DocumentKind,
    PaymentState,
)
from connector.ports import RelationRejected
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.server import LoopbackServer
from connector.sandbox.yuki import YukiSandbox, demo_administration
from connector.stores.memory import MemoryCredentialStore
from tests.fakes import START, FakeClock  # noqa: F401 - the clock fixture lives in tests/conftest.py
from tests.unit.test_yuki_adapter import World, entry, line, party

INCOMING = Direction.INCOMING


@pytest.fixture
def world(clock):
    w = World()
    yield w
    w.adapter.close()


def supplier(world: World, number: str = "500", name: str = "Supplies BV", **extra: str) -> str:
    code = world.adapter.ensure_relations([party(f"s{number}", name, number, **extra)], customer=False)[f"s{number}"]
    assert isinstance(code, str)
    return code


def bill(host_id: str, relation: str, ref: str, *, kind: DocumentKind = DocumentKind.INVOICE, net: str = "100.00",
         tax: str = "21.00", gl: str = "700000"):
    return entry(host_id, relation, direction=INCOMING, ref=ref, kind=kind, lines=(line(gl, net=net, tax=tax),))


def purchases(world: World) -> list[dict]:
    return [i for i in world.sandbox.invoices(world.admin) if i["Type"] == "Purchase"]


# ------------------------------------------------------------------------------------------ bookings


def test_purchase_batch_with_one_bad_invoice_others_booked_in_one_call(world):
    code = supplier(world)
    results = world.adapter.post_bookings([
        bill("a", code, "P-1"), bill("b", code, "P-2", gl="999999"), bill("c", code, "P-3")])
    assert [type(r).__name__ for r in results] == ["BookingResult", "BookingRejected", "BookingResult"]
    assert "GL account '999999' does not exist" in results[1].reason and "ledger-account" in results[1].hint
    assert world.sandbox.calls("ProcessPurchaseInvoices") == {"writes": 1, "4xx": 1}
    assert world.sandbox.calls("ProcessSalesInvoices") == {}
    assert [(i["Reference"], i["ContactCode"], i["TotalAmount"]) for i in purchases(world)] == [
        ("P-1", code, Decimal("121.00")), ("P-3", code, Decimal("121.00"))]
    assert [r.booking_number for r in results if isinstance(r, BookingResult)] == ["202500001", "202500002"]


def test_mixed_batch_one_import_call_per_side(world):
    customer_code = world.adapter.ensure_relations([party("c1", "Client", "100")], customer=True)["c1"]
    code = supplier(world)
    results = world.adapter.post_bookings([entry("inv", customer_code, ref="S-1"), bill("b1", code, "P-1"),
                                           bill("b2", code, "P-2")])
    assert all(isinstance(r, BookingResult) for r in results)
    assert world.sandbox.calls("ProcessSalesInvoices")["writes"] == 1
    assert world.sandbox.calls("ProcessPurchaseInvoices")["writes"] == 1


def test_purchase_credit_note_sign_both_ways(world):
    code = supplier(world)
    invoice, credit = world.adapter.post_bookings([
        bill("b1", code, "P-1"), bill("bcn1", code, "PCN-1", kind=DocumentKind.CREDIT_NOTE, net="40.00", tax="8.40")])
    stored = {i["Reference"]: i for i in purchases(world)}
    assert stored["PCN-1"]["TotalAmount"] == Decimal("-48.40")  # Yuki's sign: credit note negative (§3.9)
    assert stored["PCN-1"]["Lines"][0]["LineAmount"] == Decimal("-40.00")
    assert stored["P-1"]["TotalAmount"] == Decimal("121.00")
    read = world.adapter.read_bookings([credit.entry_id], DocumentKind.CREDIT_NOTE, INCOMING)[credit.entry_id]
    assert (read.net, read.vat, read.gross) == (Decimal("40.00"), Decimal("8.40"), Decimal("48.40"))
    assert read.lines[0].net_amount == Decimal("40.00") and read.lines[0].gl_account == "700000"
    read_invoice = world.adapter.read_bookings([invoice.entry_id], DocumentKind.INVOICE, INCOMING)
    assert read_invoice[invoice.entry_id].gross == Decimal("121.00")
    # a re-run finds both (same reference, supplier and total in Yuki's sign) and writes nothing
    again = world.adapter.post_bookings([
        bill("b1", code, "P-1"), bill("bcn1", code, "PCN-1", kind=DocumentKind.CREDIT_NOTE, net="40.00", tax="8.40")])
    assert again == [invoice, credit] and world.sandbox.calls("ProcessPurchaseInvoices")["writes"] == 1


def test_one_reference_at_two_suppliers(world):
    first = supplier(world, "500", "Alpha BV")
    second = supplier(world, "600", "Beta BV")
    one, two = bill("a", first, "2025-001"), bill("b", second, "2025-001", net="50.00", tax="10.50")
    assert world.adapter.find_bookings([one, two]) == {}
    results = world.adapter.post_bookings([one, two])
    assert all(isinstance(r, BookingResult) for r in results) and results[0].entry_id != results[1].entry_id
    assert world.sandbox.calls("ProcessPurchaseInvoices")["writes"] == 1  # suppliers' numbers may share a call
    by_contact = {i["ContactCode"]: i for i in purchases(world)}
    assert by_contact[first]["DocumentID"] == results[0].entry_id
    assert by_contact[second]["DocumentID"] == results[1].entry_id
    assert world.adapter.find_bookings([one, two]) == {"a": results[0], "b": results[1]}
    assert world.adapter.find_bookings([two]) == {"b": results[1]}
    # same number, a third supplier: not found (another supplier's invoice is not this one) and bookable
    third = supplier(world, "700", "Gamma BV")
    assert world.adapter.find_bookings([bill("c", third, "2025-001")]) == {}
    assert isinstance(world.adapter.post_bookings([bill("c", third, "2025-001")])[0], BookingResult)
    # same supplier and number, other amount: Yuki would refuse it as a duplicate
    clash = world.adapter.post_bookings([bill("d", first, "2025-001", net="10.00", tax="2.10")])[0]
    assert isinstance(clash, BookingRejected) and "2025-001" in clash.reason


# ----------------------------------------------------------------------------------------- suppliers


def test_supplier_matched_by_vat_number_no_duplicate(world):
    kept = world.sandbox.add_contact(world.domain, "Supplies Incorporated", code="LEV01", VATNumber="be0123456749")
    uncoded = world.sandbox.add_contact(world.domain, "Beta Trading", VATNumber="NL123456789B01")
    result = world.adapter.ensure_relations([
        party("s1", "Supplies BV", "500", vat_number="BE 0123.456.749"),  # other name, formatted number
        party("s2", "Beta", "600", vat_number="NL123456789B01"),
    ], customer=False)
    assert result == {"s1": "LEV01", "s2": "6005"}  # the bookkeeper's code is kept; the uncoded one gets ours
    contacts = {c["ID"]: c for c in world.sandbox.contacts(world.domain)}
    assert len(contacts) == 2 and contacts[kept]["Code"] == "LEV01" and contacts[uncoded]["Code"] == "6005"
    assert contacts[uncoded]["FullName"] == "Beta Trading"  # nothing else changed
    assert world.sandbox.calls("UpdateContact")["writes"] == 1
    posted = world.adapter.post_bookings([bill("b1", "LEV01", "X-1"), bill("b2", "6005", "X-1")])
    assert all(isinstance(r, BookingResult) for r in posted)
    assert {i["ContactID"] for i in purchases(world)} == {kept, uncoded}
    assert len(world.sandbox.contacts(world.domain)) == 2


def test_vat_match_wins_over_the_relation_code_and_searches_are_few(world):
    by_vat = world.sandbox.add_contact(world.domain, "Supplies", code="9001", VATNumber="BE0123456749")
    world.sandbox.add_contact(world.domain, "Someone else", code="5005")
    world.sandbox.reset_calls()
    result = world.adapter.ensure_relations([party("s1", "Supplies", "500", vat_number="BE0123456749")],
                                            customer=False)
    assert result == {"s1": "9001"}
    assert world.sandbox.calls("SearchContacts")["reads"] == 1 and world.sandbox.calls("UpdateContact") == {}
    assert [c["ID"] for c in world.sandbox.contacts(world.domain) if c["VATNumber"]] == [by_vat]


def test_large_domain_falls_back_to_searches_per_supplier(world):
    old = world.sandbox.add_contact(world.domain, "Old Supplier", VATNumber="BE0111111111")  # oldest, no code
    for n in range(250):
        world.sandbox.add_contact(world.domain, f"Filler {n}", code=f"F{n}")
    world.sandbox.reset_calls()
    result = world.adapter.ensure_relations([party("s1", "Old Supplier", "300", vat_number="BE0111111111"),
                                             party("s2", "Brand New", "301", vat_number="BE0222222222")],
                                            customer=False)
    assert result == {"s1": "3005", "s2": "3015"}
    # 2 listed pages (of 3), a VATNumber search each, a Code search each; one coding write, one creation
    assert world.sandbox.calls("SearchContacts")["reads"] == 6
    assert world.sandbox.calls("UpdateContact")["writes"] == 2
    assert {c["ID"]: c["Code"] for c in world.sandbox.contacts(world.domain)}[old] == "3005"
    assert len(world.sandbox.contacts(world.domain)) == 252


def test_supplier_created_once_across_two_calls(world):
    parties = [party("s1", "New Supplier", "800", vat_number="BE0999999999"), party("s2", "No VAT", "801"),
               party("s3", "Same VAT other number", "802", vat_number="be 0999 999 999")]
    first = world.adapter.ensure_relations(parties, customer=False)
    assert first == {"s1": "8005", "s2": "8015", "s3": "8005"}  # one VAT number, one supplier
    assert world.sandbox.calls("UpdateContact")["writes"] == 2
    second = world.new_adapter().ensure_relations(parties, customer=False)
    assert second == first and world.sandbox.calls("UpdateContact")["writes"] == 2
    third = world.new_adapter().ensure_relations([parties[0]], customer=False)
    assert third == {"s1": "8005"} and world.sandbox.calls("UpdateContact")["writes"] == 2
    contacts = world.sandbox.contacts(world.domain)
    assert sorted(c["Code"] for c in contacts) == ["8005", "8015"]
    assert {c["Code"]: c["VATNumber"] for c in contacts}["8005"] == "BE0999999999"


def test_supplier_without_customer_number_only_by_a_coded_vat_match(world):
    world.sandbox.add_contact(world.domain, "Known", code="LEV7", VATNumber="BE0777777777")
    result = world.adapter.ensure_relations([
        party("k", "Known", None, vat_number="BE0777777777"), party("u", "Unknown", None, vat_number="BE0666666666"),
        party("n", "No VAT", None)], customer=False)
    assert result["k"] == "LEV7"
    assert all(isinstance(result[h], RelationRejected) and "customer number" in str(result[h]) for h in ("u", "n"))
    assert world.sandbox.calls("UpdateContact") == {} and len(world.sandbox.contacts(world.domain)) == 1


def test_supplier_that_is_also_a_customer_shares_the_contact(world):
    assert world.adapter.ensure_relations([party("c1", "Both NV", "900")], customer=True) == {"c1": "9005"}
    assert world.adapter.ensure_relations([party("c1", "Both NV", "900", vat_number="BE0888888888")],
                                          customer=False) == {"c1": "9005"}
    assert len(world.sandbox.contacts(world.domain)) == 1 and world.sandbox.calls("UpdateContact")["writes"] == 1


# ------------------------------------------------------------------------------------------ payments


def test_read_payments_paid_partly_open_both_sides_one_call_each(world):
    customer_code = world.adapter.ensure_relations([party("c1", "Client", "100")], customer=True)["c1"]
    code = supplier(world)
    sales = world.adapter.post_bookings([
        entry("s-paid", customer_code, ref="S-1"), entry("s-part", customer_code, ref="S-2"),
        entry("s-open", customer_code, ref="S-3"),
        entry("s-cn", customer_code, ref="S-CN", kind=DocumentKind.CREDIT_NOTE, lines=(line(net="10.00", tax="2.10"),)),
    ])
    bills = world.adapter.post_bookings([
        bill("p-paid", code, "P-1"), bill("p-part", code, "P-2"), bill("p-open", code, "P-3"),
        bill("p-cn", code, "P-CN", kind=DocumentKind.CREDIT_NOTE, net="40.00", tax="8.40"),
    ])
    sb = world.sandbox
    sb.mark_paid("S-1", side="sales")
    sb.mark_paid("S-2", side="sales", amount=Decimal("74.00"))  # of 174.00
    sb.mark_paid("P-1", side="purchase", contact_code=code)
    sb.mark_paid(document_id=bills[1].entry_id, amount=Decimal("21.00"))  # of 121.00
    sb.mark_paid("P-CN", side="purchase", amount=Decimal("-8.40"))  # of -48.40 (Yuki's sign)
    refs = [BookedRef(host_id=r.host_id, kind=DocumentKind.CREDIT_NOTE if "cn" in r.host_id else DocumentKind.INVOICE,
                      direction=direction, entry_id=r.entry_id, booking_number=r.booking_number,
                      reference=ref)
            for results, direction, refs_ in ((sales, Direction.OUTGOING, ("S-1", "S-2", "S-3", "S-CN")),
                                              (bills, INCOMING, ("P-1", "P-2", "P-3", "P-CN")))
            for r, ref in zip(results, refs_, strict=True)]
    sb.reset_calls()
    states = world.adapter.read_payments(refs)
    assert sb.calls("OutstandingDebtorItems")["reads"] == 1 and sb.calls("OutstandingCreditorItems")["reads"] == 1
    assert sum(sb.calls().values()) == 2  # nothing per document
    state = {r.host_id: states[r.entry_id] for r in refs}
    assert state["s-paid"] == PaymentState(entry_id=sales[0].entry_id, paid=True, open_amount=Decimal("0"))
    assert (state["s-part"].paid, state["s-part"].open_amount) == (False, Decimal("100.00"))
    assert (state["s-open"].paid, state["s-open"].open_amount) == (False, Decimal("174.00"))
    assert (state["s-cn"].paid, state["s-cn"].open_amount) == (False, Decimal("12.10"))  # document sign
    assert (state["p-paid"].paid, state["p-paid"].open_amount, state["p-paid"].paid_on) == (True, Decimal(0), None)
    assert (state["p-part"].paid, state["p-part"].open_amount) == (False, Decimal("100.00"))
    assert (state["p-open"].paid, state["p-open"].open_amount) == (False, Decimal("121.00"))
    assert (state["p-cn"].paid, state["p-cn"].open_amount) == (False, Decimal("40.00"))
    # only purchases asked: only the creditor list is read
    sb.reset_calls()
    assert set(world.adapter.read_payments([r for r in refs if r.direction is INCOMING])) == {r.entry_id for r in bills}
    assert sb.calls("OutstandingDebtorItems") == {} and sb.calls("OutstandingCreditorItems")["reads"] == 1
    assert world.adapter.read_payments([]) == {}


def test_read_payments_purchase_by_document_id_not_by_another_suppliers_number(world):
    first, second = supplier(world, "500", "Alpha"), supplier(world, "600", "Beta")
    mine, theirs = world.adapter.post_bookings([bill("a", first, "INV-9"), bill("b", second, "INV-9")])
    world.sandbox.mark_paid("INV-9", side="purchase", contact_code=first)
    refs = [BookedRef(host_id=r.host_id, kind=DocumentKind.INVOICE, direction=INCOMING, entry_id=r.entry_id,
                      booking_number=r.booking_number, reference="INV-9") for r in (mine, theirs)]
    found = world.adapter.read_payments(refs)
    assert found[mine.entry_id].paid and not found[theirs.entry_id].paid
    assert found[theirs.entry_id].open_amount == Decimal("121.00")
    with pytest.raises(ValueError):
        world.sandbox.mark_paid("INV-9")  # ambiguous: two suppliers


def test_read_payments_sales_falls_back_on_the_unique_reference(world):
    code = world.adapter.ensure_relations([party("c1", "Client", "100")], customer=True)["c1"]
    posted = world.adapter.post_bookings([entry("s1", code, ref="S-9")])[0]
    ref = BookedRef(host_id="s1", kind=DocumentKind.INVOICE, direction=Direction.OUTGOING, entry_id="legacy-id",
                    booking_number=posted.booking_number, reference="S-9")
    assert world.adapter.read_payments([ref])["legacy-id"].paid is False
    world.sandbox.mark_paid(posted.entry_id)
    assert world.adapter.read_payments([ref])["legacy-id"].paid is True

# ---------------------------------------------------------------------------------------------- demo


def test_demo_administration_usable_to_post_a_purchase(clock):
    sandbox = YukiSandbox()
    rates = (HostRate("r21", "21%", Decimal("21"), "S"), HostRate("r6", "6%", Decimal("6"), "S"),
             HostRate("rk", "Intra-EU", Decimal("0"), "K"))
    admin = demo_administration(sandbox, AdminRequest(rates=rates, currencies=frozenset({"EUR"}), years=(2025,)))
    assert admin.purchase_vat_codes == {"r21": "1", "r6": "2", "rk": "8"}
    assert admin.expense_ledger_accounts == {"r21": "700001", "r6": "700002", "rk": "700003"}
    assert admin.purchase_discount_ledger_accounts == {"*": "740000"}
    assert admin.journals.incoming_invoices == admin.journals.incoming_credit_notes == "PURCHASE"
    with LoopbackServer(sandbox) as server, create_adapter(AdapterContext(
            tool="yuki", connection=admin.connection, credentials=MemoryCredentialStore(admin.credentials),
            app_secret=lambda: admin.app_secret, base_url=server.url)) as adapter:
        _post_demo_purchase(admin, adapter)


def _post_demo_purchase(admin, adapter) -> None:
    meta = adapter.fetch_metadata()
    assert meta.journal(admin.journals.incoming_invoices).type == "purchase"
    assert all(meta.vat_code(c) is not None for c in admin.purchase_vat_codes.values())
    assert all(meta.gl_account(g) is not None for g in (*admin.expense_ledger_accounts.values(), "740000"))
    code = adapter.ensure_relations([party("s1", "Demo Supplier", "77", vat_number="NL123456789B01")], customer=False)["s1"]
    lines = (
        line(admin.expense_ledger_accounts["r21"], admin.purchase_vat_codes["r21"], "21", "100.00", "21.00"),
        line(admin.expense_ledger_accounts["r6"], admin.purchase_vat_codes["r6"], "6", "50.00", "3.00"),
        line(admin.expense_ledger_accounts["rk"], admin.purchase_vat_codes["rk"], "0", "20.00", "0.00"),
        line(admin.purchase_discount_ledger_accounts["*"], admin.purchase_vat_codes["r21"], "21", "-10.00", "-2.10"),
    )
    result = adapter.post_bookings([entry("bill-1", code, direction=INCOMING, ref="SUP-2025-1", lines=lines)])[0]
    assert isinstance(result, BookingResult) and result.booking_number.isdigit()
    read = adapter.read_bookings([result.entry_id], DocumentKind.INVOICE, INCOMING)[result.entry_id]
    assert read.gross == Decimal("181.90") and read.reference == "SUP-2025-1"
