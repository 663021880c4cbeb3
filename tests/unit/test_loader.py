"""Loading domain Documents into the host sandbox, and the round trip back through HostClient."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.clock import ScaledClock
from connector.host.client import HostClient
from connector.models import (
    Address,
    Direction,
    Document,
    DocumentAllowanceCharge,
    DocumentKind,
    DocumentLine,
    DocumentTotals,
    Party,
    VatRate,
    VatSubtotal,
)
from connector.money import ZERO, round_money
from connector.sandbox.host import HostSandbox
from connector.sandbox.loader import LoadedDocument, load_documents, tax_rate_description

TOKEN = "loader-token"
RATES = {
    "S:21": VatRate(id="S:21", description="", percentage=Decimal(21), category="S"),
    "S:6": VatRate(id="S:6", description="", percentage=Decimal(6), category="S"),
    "AE:0": VatRate(id="AE:0", description="", percentage=Decimal(0), category="AE"),
    "E:0": VatRate(id="E:0", description="", percentage=Decimal(0), category="E"),
    "Z:0": VatRate(id="Z:0", description="", percentage=Decimal(0), category="Z"),
    "O:0": VatRate(id="O:0", description="", percentage=Decimal(0), category="O"),
}
BUYER = Party(
    host_id="ubl:BE0999999999", name="Buyer NV", vat_number="BE0999999999", email="ap@buyer.test",
    company_number="0999999999",
    address=Address(line_1="Kerkstraat 1", postal_code="2000", city="Antwerpen", country="BE"),
)


def make_document(
    number: str,
    lines: list[tuple[str, str, str, str]],  # (description, quantity, net, rate id)
    *,
    adjustments: list[tuple[bool, str, str, str]] = (),  # (is_charge, amount, reason, rate id)
    kind: DocumentKind = DocumentKind.INVOICE,
    currency: str = "EUR",
    party: Party = BUYER,
    prepaid: str = "0",
    **extra: Any,
) -> Document:
    """A consistent document: breakdown per rate = lines + charges - allowances, VAT rounded per rate."""
    taxable: dict[str, Decimal] = {}
    doc_lines = []
    for description, quantity, net, rate in lines:
        q, n = Decimal(quantity), Decimal(net)
        doc_lines.append(DocumentLine(description=description, quantity=q, unit_price=n / q if q else None,
                                      net_amount=n, vat_rate_id=rate))
        taxable[rate] = taxable.get(rate, ZERO) + n
    acs = []
    for is_charge, amount, reason, rate in adjustments:
        acs.append(DocumentAllowanceCharge(is_charge=is_charge, amount=Decimal(amount), reason=reason, vat_rate_id=rate))
        taxable[rate] = taxable.get(rate, ZERO) + (1 if is_charge else -1) * Decimal(amount)
    breakdown = [
        VatSubtotal(vat_rate_id=r, taxable_amount=t, vat_amount=round_money(t * RATES[r].percentage / 100))
        for r, t in taxable.items()
    ]
    net = sum(taxable.values(), ZERO)
    vat = sum((b.vat_amount for b in breakdown), ZERO)
    return Document(
        host_id=f"ubl:{number}", kind=kind, number=number, issue_date=extra.pop("issue_date", date(2025, 3, 1)),
        currency=currency, party=party, lines=tuple(doc_lines), allowance_charges=tuple(acs),
        vat_breakdown=tuple(breakdown), vat_rates=tuple(RATES[r] for r in taxable),
        totals=DocumentTotals(net=net, vat=vat, gross=net + vat, prepaid=Decimal(prepaid),
                              payable=net + vat - Decimal(prepaid)),
        source=f"{number}.xml", **extra,
    )


def rate_key(doc: Document, rate_id: str) -> tuple[str | None, Decimal]:
    rate = doc.vat_rate(rate_id)
    return rate.category, rate.percentage


def comparable(doc: Document) -> dict[str, Any]:
    """What must survive the round trip (ids differ: compare rates by (category, percentage))."""
    return {
        "head": (doc.kind, doc.number, doc.issue_date, doc.due_date, doc.currency, doc.source, doc.payment_reference),
        "totals": (doc.totals.net, doc.totals.vat, doc.totals.gross, doc.totals.prepaid, doc.totals.payable),
        "lines": [(l.description, l.quantity, l.net_amount, rate_key(doc, l.vat_rate_id)) for l in doc.lines],
        "adjustments": sorted((a.is_charge, a.amount, a.reason, rate_key(doc, a.vat_rate_id)) for a in doc.allowance_charges),
        "breakdown": sorted((rate_key(doc, s.vat_rate_id), s.taxable_amount, s.vat_amount) for s in doc.vat_breakdown),
        "tax_currency": (doc.tax_currency, doc.vat_in_tax_currency),  # exchange_rate: derived by the host
        "party": (doc.party.name, doc.party.vat_number, doc.party.email, doc.party.address, doc.party.company_number),
    }


class Setup:
    def __init__(self) -> None:
        self.clock = ScaledClock(speed=1.0)
        self.sb = HostSandbox(clock=self.clock, seed=11)
        self.account = self.sb.add_account(TOKEN)
        self.dept = self.sb.add_department(self.account, "Seller BV", "BE0123456789")

    def client(self) -> HostClient:
        return HostClient("http://host", TOKEN, self.dept, transport=httpx.WSGITransport(app=self.sb))

    def round_trip(self, documents: list[Document], **kw: Any) -> tuple[list[LoadedDocument], list[Document]]:
        loaded = load_documents(self.sb, self.account, self.dept, documents, **kw)
        with self.client() as client:
            back = [client.get_documents(d.kind, [d.host_id])[0] for d in loaded]
        return loaded, back


MIXED = make_document(
    "INV-001",
    [("Consulting", "10", "1000.00", "S:21"), ("Installation", "1", "500.00", "AE:0"), ("Training", "2", "151.00", "E:0")],
    adjustments=[(False, "50.00", "Volume discount", "S:21"), (True, "20.00", "Transport", "E:0")],
    due_date=date(2025, 3, 31), payment_reference="+++000/0000/00097+++",
)
FOREIGN = make_document(
    "INV-USD", [("Licence", "4", "400.00", "S:21")], currency="USD",
    tax_currency="EUR", vat_in_tax_currency=Decimal("68.61"),
)
CREDIT = make_document("CN-001", [("Refund", "1", "100.00", "S:21")], kind=DocumentKind.CREDIT_NOTE, prepaid="21.00")


def test_round_trip_keeps_totals_lines_adjustments_and_vat_breakdown() -> None:
    setup = Setup()
    loaded, back = setup.round_trip([MIXED, FOREIGN, CREDIT])
    for original, copy in zip([MIXED, FOREIGN, CREDIT], back, strict=True):
        assert comparable(copy) == comparable(original)
    mixed = back[0]
    # two 0 % categories in one document keep separate subtotals: the host keeps the UBL's breakdown per
    # tax rate (extension total.taxes[].tax_rate); its public API merges them per numeric rate
    assert {rate_key(mixed, s.vat_rate_id): s.taxable_amount for s in mixed.vat_breakdown} == {
        ("S", 21): Decimal("950.00"), ("AE", 0): Decimal("500.00"), ("E", 0): Decimal("171.00")}
    rows = setup.sb.invoice(loaded[0].host_id)["total"]["taxes"]
    assert len(rows) == 3 and all(row["tax_rate"]["type"] == "taxRate" for row in rows)
    setup.sb.extensions = False
    assert [(r["rate"], r["taxable"]["amount"]) for r in setup.sb.invoice(loaded[0].host_id)["total"]["taxes"]] == [
        (Decimal("0.21"), Decimal("950.00")), (Decimal("0"), Decimal("671.00"))]
    setup.sb.extensions = True
    assert back[1].exchange_rate == Decimal("0.816786") and back[1].tax_currency == "EUR"
    assert back[2].kind is DocumentKind.CREDIT_NOTE and back[2].totals.payable == Decimal("100.00")


def test_loaded_records_and_host_data() -> None:
    setup = Setup()
    loaded = load_documents(setup.sb, setup.account, setup.dept, [MIXED, FOREIGN, CREDIT])
    assert [(l.source, l.kind, l.number) for l in loaded] == [
        ("INV-001.xml", DocumentKind.INVOICE, "INV-001"),
        ("INV-USD.xml", DocumentKind.INVOICE, "INV-USD"),
        ("CN-001.xml", DocumentKind.CREDIT_NOTE, "CN-001"),
    ]
    invoice = setup.sb.invoice(loaded[0].host_id)
    assert invoice["status"] == "outstanding" and invoice["source_file"] == "INV-001.xml"
    assert invoice["discounts"][0]["type"] == "amount" and invoice["charges"][0]["description"] == "Transport"
    assert invoice["currency_exchange_rate"] is None
    assert setup.sb.invoice(loaded[1].host_id)["currency_exchange_rate"] == {
        "from": "USD", "to": "EUR", "rate": Decimal("0.816786")}
    assert setup.sb.credit_note(loaded[2].host_id)["status"] == "booked"
    assert len({l.customer_id for l in loaded}) == 1


def test_one_tax_rate_per_category_and_percentage_with_readable_descriptions() -> None:
    setup = Setup()
    existing = setup.sb.add_tax_rate(setup.dept, "21%", "0.21", category="S")
    load_documents(setup.sb, setup.account, setup.dept, [MIXED, FOREIGN])
    load_documents(setup.sb, setup.account, setup.dept, [make_document("X", [("a", "1", "1", "O:0"), ("b", "1", "1", "Z:0")])])
    rates = {(r["category"], r["rate"]): (r["id"], r["description"]) for r in setup.sb.tax_rates(setup.dept)}
    assert rates == {
        ("S", Decimal("0.21")): (existing, "21%"),
        ("AE", 0): (rates[("AE", 0)][0], "0% reverse charge"),
        ("E", 0): (rates[("E", 0)][0], "0% exempt"),
        ("O", 0): (rates[("O", 0)][0], "not subject to VAT"),
        ("Z", 0): (rates[("Z", 0)][0], "0% zero-rated"),
    }
    assert [tax_rate_description(VatRate(id="x", description="", percentage=p, category=c)) for p, c in
            ((Decimal("5.50"), "S"), (Decimal(0), "K"), (Decimal(0), "G"), (Decimal(7), "L"), (Decimal(12), None))] == [
        "5.5%", "0% intra-community", "0% export", "7% IGIC", "12%"]


def test_customers_are_deduplicated_by_vat_number_then_name() -> None:
    setup = Setup()
    same_vat = BUYER.model_copy(update={"host_id": "ubl:other", "name": "Buyer (other spelling)", "vat_number": "BE 0999.999.999"})
    private = Party(host_id="ubl:p", name="Jan Jansen")
    private_again = Party(host_id="ubl:p2", name="JAN JANSEN ")
    docs = [MIXED, make_document("2", [("a", "1", "10", "S:21")], party=same_vat),
            make_document("3", [("a", "1", "10", "S:21")], party=private),
            make_document("4", [("a", "1", "10", "S:21")], party=private_again)]
    loaded = load_documents(setup.sb, setup.account, setup.dept, docs)
    assert loaded[0].customer_id == loaded[1].customer_id and loaded[2].customer_id == loaded[3].customer_id
    companies = {c["id"]: c for c in setup.sb.companies(setup.account)}
    assert len(companies) == 2
    buyer = companies[loaded[0].customer_id]
    assert buyer["vat_type"] == "contractor"  # the first document uses AE (domestic reverse charge)
    assert buyer["addresses"][0]["address"]["city"] == "Antwerpen" and buyer["customer_number"] == "1"
    assert companies[loaded[2].customer_id]["vat_type"] == "private_person"
    # loading again reuses the companies already in the account
    again = load_documents(setup.sb, setup.account, setup.dept, [make_document("5", [("a", "1", "10", "S:21")])])
    assert again[0].customer_id == loaded[0].customer_id


def test_unknown_vat_rate_id_is_refused() -> None:
    setup = Setup()
    broken = MIXED.model_copy(update={"vat_rates": (RATES["S:21"],)})
    with pytest.raises(ValueError, match="AE:0"):
        load_documents(setup.sb, setup.account, setup.dept, [broken])


def test_incoming_documents_go_to_the_expenses_module() -> None:
    setup = Setup()
    incoming = make_document("PUR-1", [("Paper", "1", "100", "S:21")], direction=Direction.INCOMING)
    (loaded,) = load_documents(setup.sb, setup.account, setup.dept, [incoming])
    assert loaded.direction is Direction.INCOMING
    info = setup.sb.incoming_document(loaded.host_id)
    assert info["review_status"] == "approved" and info["origin"]["type"] == "peppolIncomingDocument"
    assert info["total"]["tax_inclusive"] == {"amount": Decimal("121.00")} and info["source_file"] == "PUR-1.xml"


_CENTS = st.integers(min_value=1, max_value=2_000_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def documents(draw: st.DrawFn) -> Document:
    rate_ids = sorted(RATES)
    lines = [
        (f"line {i}", str(draw(st.integers(1, 5))), str(draw(_CENTS)), draw(st.sampled_from(rate_ids)))
        for i in range(draw(st.integers(1, 6)))
    ]
    used = sorted({line[3] for line in lines})
    adjustments = [
        (draw(st.booleans()), str(draw(st.integers(1, 5000).map(lambda c: Decimal(c).scaleb(-2)))), f"adj {i}",
         draw(st.sampled_from(used)))
        for i in range(draw(st.integers(0, 3)))
    ]
    currency = draw(st.sampled_from(["EUR", "USD"]))
    return make_document("P-1", lines, adjustments=adjustments, currency=currency,
                         kind=draw(st.sampled_from(list(DocumentKind))))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_round_trip_property(document: Document) -> None:
    setup = Setup()
    _, (back,) = setup.round_trip([document])
    assert comparable(back) == comparable(document)


SHARED_UBL = Path(__file__).resolve().parents[3] / "shared" / "data" / "ubl"


@pytest.mark.skipif(not SHARED_UBL.is_dir(), reason="../shared/data/ubl is not next to the project")
def test_shared_ubl_samples_survive_the_round_trip() -> None:
    """Every shared sample, parsed by connector.ubl, comes back with the same totals, lines and VAT per
    (category, rate). Known, documented losses are not compared: prepaid vs rounding (the host has only
    payable), a tax currency other than the company currency, payment references of credit notes, and
    parties merged by VAT number."""
    ubl = pytest.importorskip("connector.ubl")
    setup = Setup()
    files = sorted(SHARED_UBL.glob("*.xml"))
    assert files
    originals = [ubl.parse_ubl_file(path) for path in files]
    _, back = setup.round_trip(originals)

    def vat_per_rate(doc: Document) -> dict[tuple[str | None, Decimal], tuple[Decimal, Decimal]]:
        result: dict[tuple[str | None, Decimal], tuple[Decimal, Decimal]] = {}
        for sub in doc.vat_breakdown:
            base, vat = result.get(rate_key(doc, sub.vat_rate_id), (ZERO, ZERO))
            result[rate_key(doc, sub.vat_rate_id)] = (base + sub.taxable_amount, vat + sub.vat_amount)
        return result

    numbers: set[str] = set()
    for path, original, copy in zip(files, originals, back, strict=True):
        # A number already used in the entity comes back with a suffix (the host numbers uniquely).
        assert copy.number == original.number or copy.number.startswith(f"{original.number}-"), path.name
        assert copy.number not in numbers, path.name
        numbers.add(copy.number)
        a, b = comparable(copy), comparable(original.model_copy(update={"number": copy.number}))
        assert a["head"][:6] == b["head"][:6], path.name
        assert [a["totals"][i] for i in (0, 1, 2, 4)] == [b["totals"][i] for i in (0, 1, 2, 4)], path.name
        assert (a["lines"], a["adjustments"]) == (b["lines"], b["adjustments"]), path.name
        assert vat_per_rate(copy) == vat_per_rate(original), path.name
