"""Exact Online, purchase side and payment status: the simulator (§1.7-§1.9) and the adapter against it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connector.adapters.exact import ExactOnlineAdapter, normalise_vat
from connector.booking import build_entry
from connector.models import (
    BookedRef,
    BookingEntry,
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
    VatRate,
    VatSubtotal,
)
from connector.sandbox.admin import AdminRequest, HostRate
from connector.sandbox.exact import ExactSandbox, demo_administration
from connector.sandbox.odata import loads
from connector.stores.memory import MemoryCredentialStore
from tests.unit.test_exact_adapter import CLIENT, DIV, SECRET, World, entry, line, party
from tests.unit.test_exact_sandbox import Api, body_of, make_sandbox, message

D = Decimal
SANDBOX_DIV = 101  # the division of tests.unit.test_exact_sandbox.make_sandbox


@pytest.fixture
def env(clock):
    sandbox, ids = make_sandbox()
    return sandbox, ids, Api(sandbox)


@pytest.fixture
def world(clock):
    w = World(clock)
    yield w
    w.adapter.close()


def purchase_body(ids: dict[str, str], **header: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Journal": "60", "Supplier": ids["supplier"], "EntryDate": "2025-02-10", "YourRef": "SUP-77",
        "PurchaseEntryLines": [{"GLAccount": ids["gl:7000"], "AmountFC": "200.00", "VATCode": "5  "}],
    }
    body.update(header)
    return body


def credit_lines(ids: dict[str, str], amount: str = "-20.00") -> list[dict[str, Any]]:
    return [{"GLAccount": ids["gl:7000"], "AmountFC": amount, "VATCode": "5  "}]


# ------------------------------------------------------------------------------ simulator: entries


PURCHASE_CASES = [
    ("customer is not a supplier", lambda ids: purchase_body(ids, Supplier=ids["customer"]), "Invalid: Supplier (Type)"),
    ("sales journal", lambda ids: purchase_body(ids, Journal="70"), "Invalid: Journal (Type)"),
    ("invoice in a purchase-return journal", lambda ids: purchase_body(ids, Journal="61"), "Invalid: Journal (Type)"),
    ("sales-only VAT code", lambda ids: purchase_body(ids, PurchaseEntryLines=[
        {"GLAccount": ids["gl:7000"], "AmountFC": "1.00", "VATCode": "2  "}]), "cannot be used for purchases"),
    ("credit note with positive amounts", lambda ids: purchase_body(
        ids, Type=31, PurchaseEntryLines=credit_lines(ids, "20.00")), "needs negative amounts"),
    ("sales type on a purchase", lambda ids: purchase_body(ids, Type=20), "Invalid: Type: 20"),
    ("customer field on a purchase", lambda ids: purchase_body(ids, Customer=ids["customer"]),
     "property 'Customer' does not exist"),
    ("sales lines on a purchase", lambda ids: {**{k: v for k, v in purchase_body(ids).items()
                                                  if k != "PurchaseEntryLines"},
                                               "SalesEntryLines": credit_lines(ids)}, "does not exist"),
]


@pytest.mark.parametrize(("case", "build", "expected"), PURCHASE_CASES, ids=[c[0] for c in PURCHASE_CASES])
def test_purchase_entry_validation(env, case, build, expected):
    sandbox, ids, api = env
    response = api.post("purchaseentry/PurchaseEntries", build(ids))
    assert response.status_code == 400
    assert expected in message(response)
    assert sandbox.purchase_entries(SANDBOX_DIV) == [] and body_of(api.get("cashflow/Payments"))["d"]["results"] == []


def test_purchase_journals_types_vat_usage_and_repeated_your_ref(env):
    sandbox, ids, api = env
    both = api.post("purchaseentry/PurchaseEntries", purchase_body(ids, PurchaseEntryLines=[
        {"GLAccount": ids["gl:7000"], "AmountFC": "10.00", "VATCode": "0  "}]))  # a B (both) code
    assert both.status_code == 201, message(both)
    for journal in ("60", "61"):  # Type 31 goes into a type-22 or a type-23 journal
        credit = api.post("purchaseentry/PurchaseEntries",
                          purchase_body(ids, Journal=journal, Type=31, PurchaseEntryLines=credit_lines(ids)))
        assert credit.status_code == 201, message(credit)
        assert body_of(credit)["d"]["Type"] == 31 and body_of(credit)["d"]["AmountFC"] == D("-24.20")
    # YourRef is the supplier's invoice number: Exact does not keep it unique (§1.12)
    again = api.post("purchaseentry/PurchaseEntries", purchase_body(ids, YourRef="SUP-77"))
    assert again.status_code == 201
    assert [e["YourRef"] for e in sandbox.purchase_entries(SANDBOX_DIV)] == ["SUP-77"] * 4
    lines = body_of(api.get("purchaseentry/PurchaseEntryLines", **{"$filter": "AmountFC lt 0"}))["d"]["results"]
    assert [ln["AmountFC"] for ln in lines] == [D("-20.00")] * 2


# ------------------------------------------------------------------------------ simulator: payments


def test_payments_row_per_purchase_entry_partial_and_full_payment(env):
    sandbox, ids, api = env
    entry_id = body_of(api.post("purchaseentry/PurchaseEntries", purchase_body(ids)))["d"]["EntryID"]
    flt = {"$filter": f"TransactionEntryID eq guid'{entry_id}'"}
    (row,) = body_of(api.get("cashflow/Payments", **flt))["d"]["results"]
    assert (row["Status"], row["AmountFC"], row["TransactionAmountFC"], row["YourRef"], row["Journal"]) == (
        20, D("242.00"), D("242.00"), "SUP-77", "60")
    assert "IsFullyPaid" not in row and "LastPaymentDate" not in row
    assert "no property 'IsFullyPaid'" in message(api.get("cashflow/Payments", **{"$filter": "IsFullyPaid eq true"}))

    sandbox.mark_paid(entry_id, date(2025, 3, 5), amount="100.00")
    rows = body_of(api.get("cashflow/Payments", **flt))["d"]["results"]
    assert sorted((r["Status"], r["AmountFC"]) for r in rows) == [(20, D("142.00")), (50, D("100.00"))]
    assert len({r["EntryID"] for r in rows}) == 2
    (listed,) = body_of(api.get("read/financial/PayablesList"))["d"]["results"]
    assert listed["Amount"] == D("142.00") and listed["YourRef"] == "SUP-77" and listed["AccountId"] == ids["supplier"]
    with pytest.raises(ValueError):
        sandbox.mark_paid(entry_id, amount="142.01")

    sandbox.mark_paid(entry_id, date(2025, 3, 20))
    rows = body_of(api.get("cashflow/Payments", **flt))["d"]["results"]
    assert [r["Status"] for r in rows] == [50, 50]
    assert body_of(api.get("read/financial/PayablesList"))["d"]["results"] == []
    with pytest.raises(ValueError):
        sandbox.mark_paid(entry_id)


def test_receivables_filter_or_terms_and_paging(clock):
    sandbox, ids = make_sandbox(page_size=3)
    api = Api(sandbox)
    entry_ids = []
    for n in range(7):
        body = {"Journal": "70", "Customer": ids["customer"], "EntryDate": "2025-03-01", "YourRef": f"INV-{n}",
                "SalesEntryLines": [{"GLAccount": ids["gl:8000"], "AmountFC": "100.00", "VATCode": "2  "}]}
        entry_ids.append(body_of(api.post("salesentry/SalesEntries", body))["d"]["EntryID"])
    for entry_id in entry_ids[:4]:
        sandbox.mark_paid(entry_id, date(2025, 3, 9))
    flt = " or ".join(f"TransactionEntryID eq guid'{i}'" for i in entry_ids[1:6])
    page = body_of(api.get("cashflow/Receivables", **{"$filter": flt, "$select": "TransactionEntryID,IsFullyPaid"}))["d"]
    seen = [r["TransactionEntryID"] for r in page["results"]]
    assert len(seen) == 3 and "__next" in page
    while "__next" in page:
        page = body_of(api.get(page["__next"]))["d"]
        seen += [r["TransactionEntryID"] for r in page["results"]]
    assert sorted(seen) == sorted(entry_ids[1:6])
    paid = body_of(api.get("cashflow/Receivables", **{"$filter": "IsFullyPaid eq true and Status eq 50"}))["d"]
    paid_ids = [r["TransactionEntryID"] for r in paid["results"]]
    while "__next" in paid:
        paid = body_of(api.get(paid["__next"]))["d"]
        paid_ids += [r["TransactionEntryID"] for r in paid["results"]]
    assert sorted(paid_ids) == sorted(entry_ids[:4])
    listed = body_of(api.get("read/financial/ReceivablesList", **{"$filter": f"AccountId eq guid'{ids['customer']}'"}))
    assert listed["d"]["results"][0]["Amount"] == D("121.00")
    assert api.post("read/financial/ReceivablesList", {}).status_code == 405


# ------------------------------------------------------------------------------ adapter: suppliers


def test_normalise_vat():
    assert normalise_vat(" be 0123.456.789 ") == "BE0123456789"
    assert normalise_vat("NL-8001.23.456.B01") == "NL800123456B01"
    assert normalise_vat("") is None and normalise_vat(" .- ") is None and normalise_vat(None) is None


def test_supplier_found_by_vat_number_gets_the_flag_and_no_duplicate(world):
    adapter, sandbox = world.adapter, world.sandbox
    customer = sandbox.add_account(DIV, "Acme Belgium", code="1001", is_sales=True, VATNumber="BE0123456789")
    other = sandbox.add_account(DIV, "Other", code="1002", is_sales=True, VATNumber="BE0999999999")
    result = adapter.ensure_relations(
        [party("s-acme", "ACME Belgium NV", "5001", vat_number="be 0123.456.789")], customer=False
    )
    assert result == {"s-acme": customer}
    accounts = {a["ID"]: a for a in sandbox.accounts(DIV)}
    assert len(accounts) == 2 and accounts[customer]["IsSupplier"] is True and accounts[customer]["IsSales"] is True
    assert accounts[other]["IsSupplier"] is False
    assert adapter.calls["writes"] == 1  # the PUT of the flag, no POST
    assert sandbox.calls("crm/Accounts")["writes"] == 1

    writes = adapter.calls["writes"]
    assert adapter.ensure_relations([party("s-acme", "ACME Belgium NV", "5001", vat_number="BE0123456789")],
                                    customer=False) == {"s-acme": customer}
    assert adapter.calls["writes"] == writes  # already a supplier: nothing written


def test_supplier_vat_match_prefers_an_existing_supplier_and_wins_over_the_code(world):
    adapter, sandbox = world.adapter, world.sandbox
    sandbox.add_account(DIV, "Twin customer", code="1001", is_sales=True, VATNumber="BE0111111111")
    twin_supplier = sandbox.add_account(DIV, "Twin supplier", code="1009", is_sales=False, is_supplier=True,
                                        VATNumber="be0111111111")
    by_code = sandbox.add_account(DIV, "Code owner", code="5001", is_sales=False, is_supplier=True)
    typed = sandbox.add_account(DIV, "Typed with dots", code="1010", is_sales=False, is_supplier=True,
                                VATNumber="BE 0444.444.444")
    result = adapter.ensure_relations(
        [party("s1", "Twin", "5001", vat_number="BE 0111.111.111"),
         party("s2", "Typed", "5002", vat_number="BE 0444.444.444")],  # found as the host typed it
        customer=False,
    )
    assert result == {"s1": twin_supplier, "s2": typed} and by_code != twin_supplier
    assert adapter.calls["writes"] == 0


def test_supplier_created_once_across_calls_and_parties(world):
    adapter, sandbox = world.adapter, world.sandbox
    parties = [
        party("s-new", "New Supplies", "6001", vat_number="BE 0222.222.222"),
        party("s-same-vat", "New Supplies (branch)", "6002", vat_number="BE0222222222"),
        party("s-novat", "Private Plumber", "6003"),
    ]
    first = adapter.ensure_relations(parties, customer=False)
    assert first["s-new"] == first["s-same-vat"] and isinstance(first["s-novat"], str)
    assert adapter.calls["writes"] == 2
    created = {a["ID"]: a for a in sandbox.accounts(DIV)}
    assert created[first["s-new"]]["VATNumber"] == "BE0222222222" and created[first["s-new"]]["IsSupplier"] is True
    assert created[first["s-new"]]["IsSales"] is False and created[first["s-novat"]]["Code"].strip() == "6003"

    fresh = world.new_adapter()  # another invocation: found by VAT number and by code
    again = fresh.ensure_relations(parties, customer=False)
    assert again == first and fresh.calls["writes"] == 0
    assert len(sandbox.accounts(DIV)) == 2
    fresh.close()


# ------------------------------------------------------------------------------ adapter: bookings


def purchase(host_id: str, supplier: str, *, ref: str, kind: DocumentKind = DocumentKind.INVOICE,
             net: str = "200.00", tax: str = "42.00", journal: str = "60") -> BookingEntry:
    return entry(host_id, supplier, direction=Direction.INCOMING, journal=journal, ref=ref, kind=kind,
                 lines=(line("7000", "5", "21", net, tax),))


def test_purchase_credit_note_sign_both_ways(world):
    adapter, sandbox = world.adapter, world.sandbox
    supplier = adapter.ensure_relations([party("s1", "Supplies", "4001")], customer=False)["s1"]
    (result,) = adapter.post_bookings([purchase("bcn", supplier, ref="CN-9", kind=DocumentKind.CREDIT_NOTE,
                                                 net="10.00", tax="2.10", journal="61")])
    assert isinstance(result, BookingResult)
    (stored,) = sandbox.purchase_entries(DIV)
    assert (stored["Type"], stored["AmountFC"], stored["VATAmountFC"]) == (31, D("-12.10"), D("-2.10"))
    assert stored["PurchaseEntryLines"][0]["AmountFC"] == D("-10.00") and stored["Supplier"] == supplier
    assert stored["YourRef"] == "CN-9" and stored["Payment"]["AmountFC"] == D("-12.10")
    booked = adapter.read_bookings([result.entry_id], DocumentKind.CREDIT_NOTE, Direction.INCOMING)[result.entry_id]
    assert (booked.net, booked.vat, booked.gross) == (D("10.00"), D("2.10"), D("12.10"))
    assert booked.lines[0].net_amount == D("10.00") and booked.lines[0].vat_amount == D("2.10")
    assert adapter.read_bookings([result.entry_id], DocumentKind.CREDIT_NOTE, Direction.OUTGOING) == {}


def test_find_purchase_with_the_same_your_ref_at_two_suppliers(world):
    adapter = world.adapter
    relations = adapter.ensure_relations([party("a", "Alpha", "4001"), party("b", "Beta", "4002")], customer=False)
    alpha_bill = purchase("bill-a", relations["a"], ref="F-001")
    beta_bill = purchase("bill-b", relations["b"], ref="F-001")
    (posted_a,) = adapter.post_bookings([alpha_bill])
    assert adapter.find_bookings([alpha_bill, beta_bill]) == {"bill-a": posted_a}
    (posted_b,) = adapter.post_bookings([beta_bill])  # not taken for Alpha's: posted as its own entry
    assert posted_b.entry_id != posted_a.entry_id
    assert adapter.find_bookings([alpha_bill, beta_bill]) == {"bill-a": posted_a, "bill-b": posted_b}
    credit_same_ref = purchase("cn-a", relations["a"], ref="F-001", kind=DocumentKind.CREDIT_NOTE, journal="60")
    assert adapter.find_bookings([credit_same_ref]) == {}  # Type 31 is another document


def test_lost_purchase_post_is_found_not_reposted(world):
    adapter, sandbox = world.adapter, world.sandbox
    relations = adapter.ensure_relations([party("a", "Alpha", "4001"), party("b", "Beta", "4002")], customer=False)
    adapter.post_bookings([purchase("bill-b", relations["b"], ref="F-7")])
    sandbox.fail_next(500, endpoint="purchaseentry/PurchaseEntries", after=True)
    (result,) = adapter.post_bookings([purchase("bill-a", relations["a"], ref="F-7")])
    assert isinstance(result, BookingResult)
    entries = sandbox.purchase_entries(DIV)
    assert len(entries) == 2 and result.entry_id == entries[1]["EntryID"] and entries[1]["Supplier"] == relations["a"]


# ------------------------------------------------------------------------------ adapter: payments


def ref(result: BookingResult, kind: DocumentKind, direction: Direction) -> BookedRef:
    return BookedRef(host_id=result.host_id, kind=kind, direction=direction, entry_id=result.entry_id,
                     booking_number=result.booking_number, reference=result.host_id)


def test_read_payments_for_sales_and_purchase_entries(world):
    adapter, sandbox = world.adapter, world.sandbox
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    supplier = adapter.ensure_relations([party("s1", "Supplies", "4001")], customer=False)["s1"]
    inv = lambda h: entry(h, customer, ref=h.upper())  # noqa: E731 - gross 175.50
    sales = adapter.post_bookings([
        inv("paid"), inv("part"), inv("open"),
        entry("cn", customer, ref="CN", kind=DocumentKind.CREDIT_NOTE, journal="71", lines=(line(net="40.00", tax="8.40"),)),
    ])
    bills = adapter.post_bookings([
        purchase("bill-paid", supplier, ref="B1"), purchase("bill-part", supplier, ref="B2"),
        purchase("bcn", supplier, ref="B3", kind=DocumentKind.CREDIT_NOTE, net="10.00", tax="2.10", journal="61"),
    ])
    assert all(isinstance(r, BookingResult) for r in [*sales, *bills])
    s_paid, s_part, s_open, s_cn = sales
    b_paid, b_part, b_cn = bills
    sandbox.mark_paid(s_paid.entry_id, date(2025, 3, 20))
    sandbox.mark_paid(s_part.entry_id, date(2025, 3, 21), amount="75.50")
    sandbox.mark_paid(s_cn.entry_id, date(2025, 3, 22), amount="8.40")
    sandbox.mark_paid(b_paid.entry_id, date(2025, 4, 2))
    sandbox.mark_paid(b_part.entry_id, date(2025, 4, 3), amount="42.00")

    out, inc, cn = Direction.OUTGOING, Direction.INCOMING, DocumentKind.CREDIT_NOTE
    refs = [ref(s_paid, DocumentKind.INVOICE, out), ref(s_part, DocumentKind.INVOICE, out),
            ref(s_open, DocumentKind.INVOICE, out), ref(s_cn, cn, out),
            ref(b_paid, DocumentKind.INVOICE, inc), ref(b_part, DocumentKind.INVOICE, inc), ref(b_cn, cn, inc),
            BookedRef(host_id="x", kind=DocumentKind.INVOICE, direction=out,
                      entry_id="0f8fad5b-d9cb-469f-a165-70867728950e", booking_number="99", reference="X")]
    reads = adapter.calls["reads"]
    states = adapter.read_payments(refs)
    assert adapter.calls["reads"] - reads == 2  # one Receivables and one Payments request
    assert states == {
        s_paid.entry_id: PaymentState(entry_id=s_paid.entry_id, paid=True, open_amount=D("0"), paid_on=date(2025, 3, 20)),
        s_part.entry_id: PaymentState(entry_id=s_part.entry_id, paid=False, open_amount=D("100.00")),
        s_open.entry_id: PaymentState(entry_id=s_open.entry_id, paid=False, open_amount=D("175.50")),
        s_cn.entry_id: PaymentState(entry_id=s_cn.entry_id, paid=False, open_amount=D("40.00")),
        b_paid.entry_id: PaymentState(entry_id=b_paid.entry_id, paid=True, open_amount=D("0"), paid_on=date(2025, 4, 2)),
        b_part.entry_id: PaymentState(entry_id=b_part.entry_id, paid=False, open_amount=D("200.00")),
        b_cn.entry_id: PaymentState(entry_id=b_cn.entry_id, paid=False, open_amount=D("12.10")),
    }
    sandbox.mark_paid(s_cn.entry_id, date(2025, 3, 30))
    sandbox.mark_paid(b_cn.entry_id, date(2025, 4, 30))
    again = adapter.read_payments(refs)
    assert again[s_cn.entry_id] == PaymentState(entry_id=s_cn.entry_id, paid=True, open_amount=D("0"),
                                                paid_on=date(2025, 3, 30))
    assert again[b_cn.entry_id].paid and again[b_cn.entry_id].paid_on == date(2025, 4, 30)
    assert str(again[b_cn.entry_id].open_amount) == "0"


def test_read_payments_batches_40_entries_per_request(world):
    adapter, sandbox = world.adapter, world.sandbox
    customer = adapter.ensure_relations([party("c1", "Acme", "3001")], customer=True)["c1"]
    results = adapter.post_bookings([entry(f"i{n}", customer) for n in range(45)])
    sandbox.mark_paid(results[44].entry_id, date(2025, 3, 9))
    sandbox.reset_calls()
    states = adapter.read_payments([ref(r, DocumentKind.INVOICE, Direction.OUTGOING) for r in results])
    assert len(states) == 45 and [s.paid for s in states.values()].count(True) == 1
    # 2 filtered requests, the first one paged (60 rows per page hold its 40 rows: no __next)
    assert sandbox.calls("cashflow/Receivables") == {"reads": 2}
    assert adapter.read_payments([]) == {}


# ------------------------------------------------------------------------------ demo administration


R21 = VatRate(id="r21", description="21%", percentage=D("21"), category="S")
R6 = VatRate(id="r6", description="6%", percentage=D("6"), category="S")
RZ = VatRate(id="rz", description="0% zero rated", percentage=D("0"), category="Z")
RAE = VatRate(id="rae", description="0% reverse charge", percentage=D("0"), category="AE")


def test_demo_administration_posts_a_purchase_entry(clock):
    sandbox = ExactSandbox()
    rates = (R21, R6, RZ, RAE)
    admin = demo_administration(sandbox, AdminRequest(
        rates=tuple(HostRate(r.id, r.description, r.percentage, r.category) for r in rates),
        currencies=frozenset({"EUR"}), years=(2025,)))
    assert admin.journals.incoming_invoices == "60" and admin.journals.incoming_credit_notes == "61"
    assert admin.purchase_vat_codes == {"r21": "P1", "r6": "P2", "rz": "P3", "rae": "P4"}
    assert admin.expense_ledger_accounts == {"r21": "600001", "r6": "600002", "rz": "600003", "rae": "600004"}
    assert admin.purchase_discount_ledger_accounts == {"*": "608000"}
    settings = IntegrationSettings(
        tool=Tool.EXACT, start_date=date(2025, 1, 1), journals=admin.journals, vat_codes=admin.vat_codes,
        ledger_accounts=admin.ledger_accounts, discount_ledger_accounts=admin.discount_ledger_accounts,
        purchase_vat_codes=admin.purchase_vat_codes, expense_ledger_accounts=admin.expense_ledger_accounts,
        purchase_discount_ledger_accounts=admin.purchase_discount_ledger_accounts,
    )
    adapter = ExactOnlineAdapter("http://exact.test", admin.connection["division"],
                                 MemoryCredentialStore(admin.credentials), transport=httpx.WSGITransport(app=sandbox),
                                 **admin.app_secret)
    metadata = adapter.fetch_metadata()
    codes = {c.code: c for c in metadata.vat_codes}
    assert [(codes[f"P{n}"].usage, codes[f"P{n}"].percentage) for n in range(1, 5)] == [
        ("purchase", D("21")), ("purchase", D("6")), ("purchase", D("0")), ("purchase", D("0"))]
    gl_types = {row["Code"]: row["Type"] for row in
                loads(httpx.Client(transport=httpx.WSGITransport(app=sandbox)).get(
                    "http://exact.test/api/v1/1/financial/GLAccounts",
                    headers={"Authorization": f"Bearer {admin.credentials['access_token']}"}).content)["d"]["results"]}
    assert gl_types["600001"] in (111, 120) and gl_types["608000"] in (111, 120)

    seller = Party(host_id="sup-1", name="Supplies NV", vat_number="BE0333333333", customer_number="7001")
    supplier = adapter.ensure_relations([seller], customer=False)["sup-1"]
    lines = (DocumentLine(description="Paper", net_amount=D("100.00"), vat_rate_id="r21"),
             DocumentLine(description="Books", net_amount=D("50.00"), vat_rate_id="r6"),
             DocumentLine(description="Service abroad", net_amount=D("80.00"), vat_rate_id="rae"))
    discount = DocumentAllowanceCharge(is_charge=False, amount=D("10.00"), reason="Loyalty", vat_rate_id="r21")
    breakdown = (VatSubtotal(vat_rate_id="r21", taxable_amount=D("90.00"), vat_amount=D("18.90")),
                 VatSubtotal(vat_rate_id="r6", taxable_amount=D("50.00"), vat_amount=D("3.00")),
                 VatSubtotal(vat_rate_id="rae", taxable_amount=D("80.00"), vat_amount=D("0.00")))
    document = Document(
        host_id="inc-1", kind=DocumentKind.INVOICE, direction=Direction.INCOMING, number="SUP-2025-17",
        issue_date=date(2025, 6, 3), due_date=date(2025, 7, 3), currency="EUR", party=seller, lines=lines,
        allowance_charges=(discount,), vat_breakdown=breakdown, vat_rates=(R21, R6, RAE),
        totals=DocumentTotals(net=D("220.00"), vat=D("21.90"), gross=D("241.90"), payable=D("241.90")),
    )
    booking = build_entry(document, settings, metadata, supplier)
    assert isinstance(booking, BookingEntry), booking
    (result,) = adapter.post_bookings([booking])
    assert isinstance(result, BookingResult), result
    (stored,) = sandbox.purchase_entries(1)
    assert (stored["Type"], stored["Journal"], stored["YourRef"], stored["AmountFC"]) == (30, "60", "SUP-2025-17", D("241.90"))
    assert sorted((ln["GLAccountCode"], ln["VATCode"], ln["AmountFC"]) for ln in stored["PurchaseEntryLines"]) == [
        ("600001", "P1 ", D("100.00")), ("600002", "P2 ", D("50.00")), ("600004", "P4 ", D("80.00")),
        ("608000", "P1 ", D("-10.00"))]
    booked = adapter.read_bookings([result.entry_id], DocumentKind.INVOICE, Direction.INCOMING)[result.entry_id]
    assert (booked.net, booked.vat, booked.gross) == (D("220.00"), D("21.90"), D("241.90"))
    assert adapter.find_bookings([booking]) == {"inc-1": result}
    adapter.close()
