"""Booking rules: entries add up to the document to the cent, or the document is skipped with a reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.booking import _split_vat, build_entry
from connector.models import (
    BookingEntry,
    Direction,
    Document,
    DocumentAllowanceCharge,
    DocumentKind,
    DocumentLine,
    DocumentTotals,
    GLAccount,
    IntegrationSettings,
    Journal,
    JournalSettings,
    Party,
    Skip,
    ToolMetadata,
    VatCode,
    VatRate,
    VatSubtotal,
)
from connector.money import allocate, round_money, to_decimal

D = Decimal
S21 = VatRate(id="S:21", description="21%", percentage=D(21), category="S")
S6 = VatRate(id="S:6", description="6%", percentage=D(6), category="S")
AE = VatRate(id="AE:0", description="0% reverse charge", percentage=D(0), category="AE")

METADATA = ToolMetadata(
    gl_accounts=(GLAccount(code="700000"), GLAccount(code="700600"), GLAccount(code="708000"), GLAccount(code="709000", blocked=True)),
    journals=(Journal(code="70", type="sales"), Journal(code="71", type="sales_credit"), Journal(code="60", type="purchase")),
    vat_codes=(
        VatCode(code="21", percentage=D(21), usage="sales"),
        VatCode(code="6", percentage=D(6), usage="sales"),
        VatCode(code="RC", percentage=D(0), usage="both"),
        VatCode(code="P21", percentage=D(21), usage="purchase"),
    ),
)
SETTINGS = IntegrationSettings(
    tool="exact",
    start_date=date(2020, 1, 1),
    journals=JournalSettings(outgoing_invoices="70", outgoing_credit_notes="71"),
    vat_codes={"S:21": "21", "S:6": "6", "AE:0": "RC"},
    ledger_accounts={"S:21": "700000", "S:6": "700600", "AE:0": "700000"},
    discount_ledger_accounts={"*": "708000"},
)


def doc(lines, breakdown, *, allowances=(), kind=DocumentKind.INVOICE, rates=(S21, S6, AE), totals=None) -> Document:
    net = sum((D(a) for a, _ in lines), D(0)) + sum((D(a) if c else -D(a) for a, c, _ in allowances), D(0))
    vat = sum((D(v) for _, _, v in breakdown), D(0))
    return Document(
        host_id="h1",
        kind=kind,
        number="INV-1",
        issue_date=date(2025, 5, 1),
        currency="EUR",
        party=Party(host_id="c1", name="Acme"),
        lines=tuple(DocumentLine(description=f"l{i}", net_amount=D(a), vat_rate_id=r) for i, (a, r) in enumerate(lines)),
        allowance_charges=tuple(DocumentAllowanceCharge(is_charge=c, amount=D(a), reason="x", vat_rate_id=r) for a, c, r in allowances),
        vat_breakdown=tuple(VatSubtotal(vat_rate_id=r, taxable_amount=D(t), vat_amount=D(v)) for r, t, v in breakdown),
        vat_rates=rates,
        totals=totals or DocumentTotals(net=net, vat=vat, gross=net + vat, payable=net + vat),
    )


def book(document: Document, settings: IntegrationSettings = SETTINGS) -> BookingEntry | Skip:
    return build_entry(document, settings, METADATA, "rel-1")


def test_money_refuses_floats_and_rounds_half_up():
    with pytest.raises(ValueError, match="float"):
        to_decimal(0.1)
    assert round_money(D("365.125")) == D("365.13")
    assert round_money(D("-0.005")) == D("-0.01")


def test_multiple_vat_rates_make_one_line_per_account_and_code():
    entry = book(doc([("100.00", "S:21"), ("50.00", "S:21"), ("200.00", "S:6")], [("S:21", "150.00", "31.50"), ("S:6", "200.00", "12.00")]))
    assert isinstance(entry, BookingEntry)
    lines = {(l.gl_account, l.vat_code): (l.net_amount, l.vat_amount) for l in entry.lines}
    assert lines == {("700000", "21"): (D("150.00"), D("31.50")), ("700600", "6"): (D("200.00"), D("12.00"))}
    assert (entry.net, entry.vat, entry.gross) == (D("350.00"), D("43.50"), D("393.50"))


def test_document_discount_goes_negative_to_the_discount_account_and_vat_stays_the_documents():
    document = doc([("1000.00", "S:21")], [("S:21", "900.00", "189.00")], allowances=[("100.00", False, "S:21")])
    entry = book(document)
    assert isinstance(entry, BookingEntry)
    lines = {l.gl_account: (l.net_amount, l.vat_amount) for l in entry.lines}
    assert lines == {"700000": (D("1000.00"), D("210.00")), "708000": (D("-100.00"), D("-21.00"))}
    assert entry.vat == D("189.00") and entry.gross == D("1089.00")


def test_charge_is_booked_on_the_rates_ledger_account():
    entry = book(doc([("100.00", "S:21")], [("S:21", "110.00", "23.10")], allowances=[("10.00", True, "S:21")]))
    assert isinstance(entry, BookingEntry)
    assert [(l.gl_account, l.net_amount) for l in entry.lines] == [("700000", D("110.00"))]


def test_credit_note_keeps_its_own_positive_sign_and_uses_the_credit_note_journal():
    entry = book(doc([("400.00", "S:21")], [("S:21", "400.00", "84.00")], kind=DocumentKind.CREDIT_NOTE))
    assert isinstance(entry, BookingEntry)
    assert entry.journal == "71" and entry.gross == D("484.00") and entry.lines[0].net_amount > 0


def test_negative_invoice_stays_negative():
    entry = book(doc([("-50.00", "S:21")], [("S:21", "-50.00", "-10.50")]))
    assert isinstance(entry, BookingEntry) and entry.gross == D("-60.50")


@pytest.mark.parametrize(
    ("document", "settings", "reason"),
    [
        (doc([("185.07", "S:21")], [("S:21", "185.08", "38.87")], totals=DocumentTotals(net=D("185.08"), vat=D("38.87"), gross=D("223.95"), payable=D("223.95"))), SETTINGS, "don't add up"),
        (doc([("185.079", "S:21")], [("S:21", "185.08", "38.87")], totals=DocumentTotals(net=D("185.08"), vat=D("38.87"), gross=D("223.95"), payable=D("223.95"))), SETTINGS, "(BT-131) of line 1 is 185.079: more than 2 decimals (EN 16931 BR-DEC-23 allows 2)"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "22.00")]), SETTINGS, "21% of 100.00 is 21.00"),
        (doc([("100.00", "AE:0")], [("AE:0", "100.00", "5.00")]), SETTINGS, "must carry no VAT"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")]), SETTINGS.model_copy(update={"vat_codes": {}}), "has no VAT code linked"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")]), SETTINGS.model_copy(update={"vat_codes": {"S:21": "6"}}), "is 21% but its linked VAT code 6 is 6%"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")]), SETTINGS.model_copy(update={"vat_codes": {"S:21": "P21"}}), "is for purchase only"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")]), SETTINGS.model_copy(update={"ledger_accounts": {}}), "has no linked ledger account"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")]), SETTINGS.model_copy(update={"ledger_accounts": {"S:21": "709000"}}), "is blocked"),
        (doc([("100.00", "S:21")], [("S:21", "90.00", "18.90")], allowances=[("10.00", False, "S:21")]), SETTINGS.model_copy(update={"discount_ledger_accounts": {}}), "no ledger account for discounts"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")]), SETTINGS.model_copy(update={"journals": JournalSettings(outgoing_invoices="60")}), "is a purchase journal"),
        (doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")]), SETTINGS.model_copy(update={"journals": JournalSettings()}), "no journal is set"),
    ],
)
def test_what_cant_be_booked_correctly_is_skipped_with_a_reason_and_a_hint(document, settings, reason):
    result = book(document, settings)
    assert isinstance(result, Skip)
    assert reason in result.reason
    assert result.hint and result.subject_id == "h1"


def test_missing_relation_is_skipped():
    result = build_entry(doc([("1.00", "S:21")], [("S:21", "1.00", "0.21")]), SETTINGS, METADATA, None)
    assert isinstance(result, Skip) and "could not be synced" in result.reason


def test_charge_and_allowance_that_cancel_carry_their_own_vat():
    document = doc([("1000.00", "S:6")], [("S:6", "1000.00", "60.00")], allowances=[("100.00", True, "S:21"), ("100.00", False, "S:21")])
    entry = book(document)
    assert isinstance(entry, BookingEntry)
    lines = {(l.gl_account, l.vat_code): (l.net_amount, l.vat_amount) for l in entry.lines}
    assert lines[("700000", "21")] == (D("100.00"), D("21.00"))
    assert lines[("708000", "21")] == (D("-100.00"), D("-21.00"))
    assert entry.vat == D("60.00")


def test_split_one_rate_over_several_subtotals_is_summed():
    k1 = VatRate(id="K:0", description="0% intra-community", percentage=D(0), category="K")
    settings = SETTINGS.model_copy(update={"vat_codes": {"K:0": "RC"}, "ledger_accounts": {"K:0": "700000"}})
    entry = book(doc([("400", "K:0"), ("300", "K:0")], [("K:0", "400", "0"), ("K:0", "300", "0")], rates=(k1,)), settings)
    assert isinstance(entry, BookingEntry) and entry.net == D("700")


cents = st.integers(min_value=-10**9, max_value=10**9).map(lambda c: D(c) / 100)


@given(vat=cents, bases=st.lists(cents, min_size=1, max_size=8), rate=st.sampled_from([D(0), D(6), D(21), D("12.5")]))
def test_vat_split_sums_exactly_and_stays_at_cent_precision(vat, bases, rate):
    shares = _split_vat(vat, bases, rate)
    assert sum(shares, D(0)) == vat
    assert all(round_money(s) == s for s in shares)


@given(total=cents, weights=st.lists(st.integers(min_value=0, max_value=10**6).map(D), min_size=1, max_size=8))
def test_allocate_sums_exactly(total, weights):
    shares = allocate(total, weights)
    assert sum(shares, D(0)) == total
    assert all(abs(s) <= abs(total) for s in shares)


# ----------------------------------------------------------------------------------- purchase side

PURCHASE_SETTINGS = SETTINGS.model_copy(
    update={
        "journals": JournalSettings(incoming_invoices="60", incoming_credit_notes="60"),
        "purchase_vat_codes": {"S:21": "P21", "AE:0": "RC", "S:6": "P21"},
        "expense_ledger_accounts": {"S:21": "700000", "AE:0": "700000"},
        "purchase_discount_ledger_accounts": {"*": "708000"},
    }
)


def incoming(document: Document) -> Document:
    return document.model_copy(update={"direction": Direction.INCOMING})


def test_purchase_uses_the_purchase_links_journal_and_vat_codes():
    entry = book(incoming(doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")])), PURCHASE_SETTINGS)
    assert isinstance(entry, BookingEntry)
    assert entry.direction is Direction.INCOMING and entry.journal == "60"
    assert [(l.vat_code, l.net_amount, l.vat_amount) for l in entry.lines] == [("P21", D("100.00"), D("21.00"))]


def test_purchase_refuses_a_sales_only_vat_code_and_a_missing_purchase_link():
    sales_code = PURCHASE_SETTINGS.model_copy(update={"purchase_vat_codes": {"S:21": "21"}})
    result = book(incoming(doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")])), sales_code)
    assert isinstance(result, Skip) and "is for sales only" in result.reason and result.subject_type == "incomingInvoice"
    unlinked = book(incoming(doc([("100.00", "S:6")], [("S:6", "100.00", "6.00")])), PURCHASE_SETTINGS)
    assert isinstance(unlinked, Skip) and "Link purchase VAT codes" in unlinked.hint
    assert isinstance(unlinked, Skip) and "is 6% but its linked VAT code P21 is 21%" in unlinked.reason


ZERO_RATES = {
    "Z": VatRate(id="Z:0", description="0% zero-rated", percentage=D(0), category="Z"),
    "E": VatRate(id="E:0", description="0% exempt", percentage=D(0), category="E"),
    "AE": VatRate(id="AE:0", description="0% reverse charge", percentage=D(0), category="AE"),
    "K": VatRate(id="K:0", description="0% intra-community", percentage=D(0), category="K"),
    "G": VatRate(id="G:0", description="0% export", percentage=D(0), category="G"),
    "O": VatRate(id="O:0", description="not subject to VAT", percentage=D(0), category="O"),
}


@pytest.mark.parametrize("category", sorted(ZERO_RATES))
@pytest.mark.parametrize("direction", [Direction.OUTGOING, Direction.INCOMING])
def test_every_zero_vat_category_books_without_vat_and_refuses_vat(category, direction):
    rate = ZERO_RATES[category]
    settings = PURCHASE_SETTINGS.model_copy(
        update={
            "vat_codes": {rate.id: "RC"}, "ledger_accounts": {rate.id: "700000"},
            "purchase_vat_codes": {rate.id: "RC"}, "expense_ledger_accounts": {rate.id: "700000"},
            "journals": JournalSettings(outgoing_invoices="70", incoming_invoices="60"),
        }
    )
    good = doc([("250.00", rate.id), ("50.00", rate.id)], [(rate.id, "300.00", "0")], rates=(rate,)).model_copy(update={"direction": direction})
    entry = book(good, settings)
    assert isinstance(entry, BookingEntry) and entry.vat == 0 and entry.gross == D("300.00")
    with_vat = doc([("300.00", rate.id)], [(rate.id, "300.00", "63.00")], rates=(rate,)).model_copy(update={"direction": direction})
    refused = book(with_vat, settings)
    assert isinstance(refused, Skip) and "must carry no VAT" in refused.reason


def test_document_charge_and_allowance_on_a_purchase():
    document = incoming(doc([("1000.00", "S:21")], [("S:21", "950.00", "199.50")], allowances=[("100.00", False, "S:21"), ("50.00", True, "S:21")]))
    entry = book(document, PURCHASE_SETTINGS)
    assert isinstance(entry, BookingEntry)
    lines = {l.gl_account: (l.net_amount, l.vat_amount) for l in entry.lines}
    assert lines == {"700000": (D("1050.00"), D("220.50")), "708000": (D("-100.00"), D("-21.00"))}
    assert (entry.net, entry.vat, entry.gross) == (D("950.00"), D("199.50"), D("1149.50"))


def test_prepaid_and_rounding_are_settlement_not_booking():
    document = doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")], totals=DocumentTotals(net=D("100.00"), vat=D("21.00"), gross=D("121.00"), prepaid=D("50.00"), rounding=D("0.20"), payable=D("71.20")))
    entry = book(document)
    assert isinstance(entry, BookingEntry) and entry.gross == D("121.00")


# ------------------------------------------------------- VAT categories, BR-CO-17 tolerance, reasons

S25 = VatRate(id="S:25", description="25%", percentage=D(25), category="S")
G0 = ZERO_RATES["G"]
O0 = ZERO_RATES["O"]
VAT_SETTINGS = SETTINGS.model_copy(
    update={
        "vat_codes": {**SETTINGS.vat_codes, "S:25": "25", "G:0": "RC", "O:0": "RC", "E:0": "RC"},
        "ledger_accounts": {**SETTINGS.ledger_accounts, "S:25": "700000", "G:0": "700000", "O:0": "700000", "E:0": "700000"},
    }
)
VAT_METADATA = METADATA.model_copy(update={"vat_codes": (*METADATA.vat_codes, VatCode(code="25", percentage=D(25), usage="sales"))})


def book_vat(document: Document) -> BookingEntry | Skip:
    return build_entry(document, VAT_SETTINGS, VAT_METADATA, "rel-1")


def test_export_line_whose_only_breakdown_is_not_subject_is_skipped_naming_br_g_01():
    result = book_vat(doc([("500.00", "G:0")], [("O:0", "500.00", "0")], rates=(G0, O0)))
    assert isinstance(result, Skip)
    assert result.reason.startswith("invoice INV-1: VAT 0% category G (export outside the EU) is used on lines (500.00)")
    assert "missing from the VAT breakdown (EN 16931 BR-G-01)" in result.reason
    assert "category O (not subject to VAT) with 500.00 instead" in result.reason and "BR-O-12" in result.reason


def test_categories_sharing_zero_percent_are_checked_per_category():
    exempt = ZERO_RATES["E"]
    both = doc([("300.00", "G:0"), ("200.00", "E:0")], [("G:0", "300.00", "0"), ("E:0", "200.00", "0")], rates=(G0, exempt))
    assert isinstance(book_vat(both), BookingEntry)
    swapped = book_vat(doc([("300.00", "G:0"), ("200.00", "E:0")], [("G:0", "200.00", "0"), ("E:0", "300.00", "0")], rates=(G0, exempt)))
    assert isinstance(swapped, Skip) and "the taxable amount of VAT 0% category G (export outside the EU) is 200.00" in swapped.reason
    assert "add up to 300.00 (EN 16931 BR-G-08)" in swapped.reason


def test_not_subject_lines_beside_another_category_are_skipped_naming_br_o_11():
    result = book_vat(doc([("300.00", "O:0"), ("100.00", "S:21")], [("O:0", "300.00", "0"), ("S:21", "100.00", "21.00")], rates=(O0, S21)))
    assert isinstance(result, Skip) and "BR-O-11" in result.reason and "category S" in result.reason


def test_a_numeric_rate_row_is_checked_against_all_the_rates_sharing_it():
    """The host's public API gives one row per numeric rate: it is compared with the lines of every rate
    of that percentage together, and its own VAT is split over their booking lines."""
    s21b = VatRate(id="S:21b", description="21% margin", percentage=D(21), category="S")
    settings = VAT_SETTINGS.model_copy(update={"vat_codes": {**VAT_SETTINGS.vat_codes, "S:21b": "21"}, "ledger_accounts": {**VAT_SETTINGS.ledger_accounts, "S:21b": "700600"}})
    shared = (VatSubtotal(vat_rate_id="S:21", shared_rate_ids=("S:21b",), taxable_amount=D("300.03"), vat_amount=D("63.01")),)
    document = doc([("100.01", "S:21"), ("200.02", "S:21b")], [], rates=(S21, s21b)).model_copy(
        update={"vat_breakdown": shared, "totals": DocumentTotals(net=D("300.03"), vat=D("63.01"), gross=D("363.04"), payable=D("363.04"))})
    entry = build_entry(document, settings, VAT_METADATA, "rel-1")
    assert isinstance(entry, BookingEntry)
    assert [(l.gl_account, l.net_amount, l.vat_amount) for l in entry.lines] == [("700000", D("100.01"), D("21.00")), ("700600", D("200.02"), D("42.01"))]
    wrong = document.model_copy(update={"vat_breakdown": (shared[0].model_copy(update={"taxable_amount": D("300.00"), "vat_amount": D("63.00")}),),
                                        "totals": DocumentTotals(net=D("300.03"), vat=D("63.00"), gross=D("363.03"), payable=D("363.03"))})
    skipped = build_entry(wrong, settings, VAT_METADATA, "rel-1")
    assert isinstance(skipped, Skip) and "is 300.00, its lines, allowances and charges add up to 300.03" in skipped.reason
    assert "one row of the host's VAT breakdown, which gives no category" in skipped.reason


def test_vat_within_br_co_17s_one_unit_books_the_documents_own_vat():
    """EHF forward billing: 25 % of 1234.71 is 308.68, the invoice states 308.63 (BR-CO-17 accepts less
    than 1 unit apart): booked with 308.63."""
    entry = book_vat(doc([("1234.71", "S:25")], [("S:25", "1234.71", "308.63")], rates=(S25,)))
    assert isinstance(entry, BookingEntry)
    assert entry.vat == D("308.63") and entry.gross == D("1543.34") and entry.lines[0].vat_amount == D("308.63")
    two_lines = book_vat(doc([("1000.00", "S:25"), ("234.71", "S:25")], [("S:25", "1234.71", "308.63")], rates=(S25,)))
    assert isinstance(two_lines, BookingEntry) and two_lines.vat == D("308.63")


@pytest.mark.parametrize(("stated", "apart"), [("309.68", "1.00"), ("307.50", "1.18")])
def test_vat_a_unit_or_more_off_is_skipped_naming_br_co_17_and_the_figures(stated, apart):
    result = book_vat(doc([("1234.71", "S:25")], [("S:25", "1234.71", stated)], rates=(S25,)))
    assert isinstance(result, Skip)
    assert result.reason == (
        f"invoice INV-1: the VAT amount of VAT 25% is {stated}, 25% of 1234.71 is 308.68: {apart} apart, EN 16931 BR-CO-17"
        " accepts less than 1 (BR-S-09)"
    )
    assert result.hint == "Correct the VAT amount of the document."


def test_financial_discount_breakdown_is_skipped_with_the_taxable_amounts_not_a_read_error():
    result = book(doc([("400.00", "S:21")], [("S:21", "392.00", "82.32")], totals=DocumentTotals(net=D("400.00"), vat=D("82.32"), gross=D("482.32"), payable=D("482.32"))))
    assert isinstance(result, Skip)
    assert result.reason == (
        "invoice INV-1: the taxable amount of VAT 21% is 392.00, its lines, allowances and charges add up to 400.00 (EN 16931 BR-S-08)"
    )


def test_every_arithmetic_reason_names_the_documents_own_number_and_a_rule():
    cases = [
        doc([("185.079", "S:21")], [("S:21", "185.08", "38.87")], totals=DocumentTotals(net=D("185.08"), vat=D("38.87"), gross=D("223.95"), payable=D("223.95"))),
        doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")], totals=DocumentTotals(net=D("100.00"), vat=D("21.00"), gross=D("122.00"), payable=D("122.00"))),
        doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")], totals=DocumentTotals(net=D("100.00"), vat=D("20.00"), gross=D("120.00"), payable=D("120.00"))),
        doc([("100.00", "S:21")], [("S:21", "100.00", "21.00"), ("S:6", "50.00", "3.00")]),
        doc([("100.00", "AE:0")], [("AE:0", "100.00", "5.00")]),
        doc([("100.00", "S:21")], [("S:21", "100.00", "23.00")]),
    ]
    for document in cases:
        result = book(document.model_copy(update={"host_id": "internal-uuid-7", "number": "2025 / 41"}))
        assert isinstance(result, Skip)
        assert result.reason.startswith("invoice 2025 / 41: ") and "internal-uuid-7" not in result.reason
        assert "(EN 16931 BR-" in result.reason or "EN 16931 BR-" in result.reason, result.reason


def test_negative_quantity_with_a_positive_amount_is_booked_with_a_warning():
    document = doc([("100.00", "S:21")], [("S:21", "100.00", "21.00")])
    document = document.model_copy(update={"lines": (document.lines[0].model_copy(update={"quantity": D("-2"), "description": "Returned chairs"}),)})
    entry = book(document)
    assert isinstance(entry, BookingEntry) and entry.net == D("100.00")
    assert entry.warnings == (
        "invoice INV-1: line 1 ('Returned chairs') has quantity -2 but line amount 100.00, of the opposite sign (EN 16931 BT-131 ="
        " quantity x net price, BR-27: the price is not negative); it was booked at 100.00: check the line's quantity and price in"
        " the host product.",
    )
    same_sign = document.model_copy(update={"lines": (document.lines[0].model_copy(update={"quantity": D("2")}),)})
    assert book(same_sign).warnings == ()  # type: ignore[union-attr]
