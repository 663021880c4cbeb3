"""Exchange rates: a document in a foreign currency is booked at BT-111's rate, the document's own rate
or the tool's rate for the document date, and skipped with a reason when there is none (never rate 1)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connector.booking import build_entry
from connector.exchange import decide_rate
from connector.models import (
    BookingEntry,
    Document,
    DocumentLine,
    DocumentTotals,
    ExchangeRate,
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

D = Decimal
S20 = VatRate(id="S:20", description="20%", percentage=D(20), category="S")


def rsd_invoice(*, bt111: str | None = None, rate: str | None = None, tax_currency: str | None = None, number: str = "2024-17") -> Document:
    """18,720 RSD: 15,600 + 20 % VAT 3,120, dated 2024-05-01."""
    return Document(
        host_id="h-rsd", kind="invoice", number=number, issue_date=date(2024, 5, 1), currency="RSD",
        exchange_rate=None if rate is None else D(rate),
        tax_currency=tax_currency or ("EUR" if bt111 is not None else None),
        vat_in_tax_currency=None if bt111 is None else D(bt111),
        party=Party(host_id="c1", name="Beograd d.o.o."),
        lines=(DocumentLine(description="Consulting", net_amount=D("15600.00"), vat_rate_id="S:20"),),
        vat_breakdown=(VatSubtotal(vat_rate_id="S:20", taxable_amount=D("15600.00"), vat_amount=D("3120.00")),),
        vat_rates=(S20,),
        totals=DocumentTotals(net=D("15600.00"), vat=D("3120.00"), gross=D("18720.00"), payable=D("18720.00")),
    )


def metadata(*rates: ExchangeRate, read: bool = True) -> ToolMetadata:
    return ToolMetadata(
        gl_accounts=(GLAccount(code="700000"),), journals=(Journal(code="70", type="sales"),),
        vat_codes=(VatCode(code="20", percentage=D(20), usage="sales"),),
        company_currency="EUR", exchange_rates=rates, exchange_rates_read=read,
    )


SETTINGS = IntegrationSettings(tool="exact", start_date=date(2024, 1, 1), journals=JournalSettings(outgoing_invoices="70"),
                               vat_codes={"S:20": "20"}, ledger_accounts={"S:20": "700000"})


def test_no_rate_anywhere_skips_with_reason_and_hint():
    result = build_entry(rsd_invoice(), SETTINGS, metadata(ExchangeRate(currency="USD", start=date(2024, 1, 1), rate=D("0.92"))), "rel-1")
    assert isinstance(result, Skip)
    assert result.reason == "invoice 2024-17: no exchange rate for RSD on 2024-05-01 in the accounting tool and none on the document (BT-111)"
    assert result.hint == "Add the RSD rate in Exact Online's exchange rates, then sync again."
    assert (result.subject_type, result.subject_id) == ("invoice", "h-rsd")


def test_rate_starting_after_the_document_date_does_not_count():
    later = ExchangeRate(currency="RSD", start=date(2024, 6, 1), rate=D("0.0086"))
    assert isinstance(build_entry(rsd_invoice(), SETTINGS, metadata(later), "rel-1"), Skip)


def test_bt111_in_company_currency_gives_the_rate():
    entry = build_entry(rsd_invoice(bt111="26.63"), SETTINGS, metadata(), "rel-1")
    assert isinstance(entry, BookingEntry)
    assert entry.exchange_rate == D("0.0085352564")  # 26.63 / 3,120 half-up to 10 decimals
    assert (D("3120.00") * entry.exchange_rate).quantize(D("0.01")) == D("26.63")  # the VAT comes back as BT-111


def test_a_dry_run_shows_the_rate_it_would_book_at():
    from connector.sync.engine import proposed_entry

    entry = build_entry(rsd_invoice(bt111="26.63"), SETTINGS, metadata(), "rel-1")
    assert proposed_entry(entry)["exchange_rate"] == "0.0085352564"


def test_a_given_rate_that_reproduces_bt111_is_kept_as_it_is():
    choice = decide_rate(rsd_invoice(bt111="26.67", rate="0.008547"), metadata())
    assert (choice.rate, choice.source) == (D("0.008547"), "document_vat")


def test_bt111_in_another_currency_is_not_a_rate_into_the_company_currency():
    # Valutor i faktura: USD invoice, VAT accounting currency SEK; the company books in EUR.
    doc = rsd_invoice(bt111="2779.00", tax_currency="SEK", rate="0.89")
    assert isinstance(build_entry(doc, SETTINGS, metadata(), "rel-1"), Skip)


def test_a_document_rate_with_the_vat_currency_equal_to_the_invoice_currency_counts():
    doc = rsd_invoice(rate="0.0086").model_copy(update={"tax_currency": "RSD"})
    assert decide_rate(doc, metadata()).rate == D("0.0086")


def test_tool_rate_for_the_document_date():
    rates = (ExchangeRate(currency="RSD", start=date(2024, 1, 1), rate=D("0.0085")),
             ExchangeRate(currency="RSD", start=date(2024, 4, 1), rate=D("0.00854")),
             ExchangeRate(currency="RSD", start=date(2024, 6, 1), rate=D("0.0087")))
    entry = build_entry(rsd_invoice(), SETTINGS, metadata(*rates), "rel-1")
    assert isinstance(entry, BookingEntry) and entry.exchange_rate == D("0.00854")


def test_host_rate_before_the_tool_table():
    entry = build_entry(rsd_invoice(rate="0.0086"), SETTINGS, metadata(ExchangeRate(currency="RSD", start=date(2024, 1, 1), rate=D("0.0085"))), "rel-1")
    assert isinstance(entry, BookingEntry) and entry.exchange_rate == D("0.0086")


def test_company_currency_needs_no_rate():
    doc = rsd_invoice().model_copy(update={"currency": "EUR"})
    entry = build_entry(doc, SETTINGS, metadata(), "rel-1")
    assert isinstance(entry, BookingEntry) and entry.exchange_rate is None


def test_tool_whose_table_is_not_read_applies_its_own():
    assert decide_rate(rsd_invoice(), metadata(read=False)).source == "tool_applies"


def test_contradicting_vat_totals_are_skipped():
    doc = rsd_invoice(bt111="-26.63")
    result = build_entry(doc, SETTINGS, metadata(), "rel-1")
    assert isinstance(result, Skip) and "BT-111" in result.reason and "-26.63" in result.reason and "3120.00" in result.reason


# ------------------------------------------------------------------------------------- Exact Online

from connector.exchange import MissingRate  # noqa: E402
from connector.models import BookingRejected, BookingResult  # noqa: E402
from tests.unit.test_exact_adapter import DIV, World, entry, line, party  # noqa: E402
import pytest  # noqa: E402


def rsd21(*, bt111: str | None = None) -> Document:
    """15,600 RSD + 21 % VAT 3,276 = 18,876 RSD on 2024-05-01 (the Exact demo division's VAT code 2 is 21 %)."""
    doc = rsd_invoice(bt111=bt111)
    return doc.model_copy(update={"totals": DocumentTotals(net=D("15600.00"), vat=D("3276.00"), gross=D("18876.00"), payable=D("18876.00"))})


def rsd_entry(customer: str, rate: Decimal | None):
    return entry("h-rsd", customer, ref="2024-17", currency="RSD", exchange_rate=rate, entry_date=date(2024, 5, 1),
                 due_date=date(2024, 5, 31), lines=(line(net="15600.00", tax="3276.00"),))


@pytest.fixture
def exact(clock):
    w = World(clock)
    w.sandbox.add_currency(DIV, "RSD")  # enabled, no rate in the division's table
    yield w
    w.adapter.close()


def test_exact_rsd_without_any_rate_is_skipped_and_never_booked_at_1(exact):
    metadata = exact.adapter.fetch_metadata()
    assert metadata.exchange_rates_read and {r.currency for r in metadata.exchange_rates} == {"USD", "GBP"}
    with pytest.raises(MissingRate) as missing:
        decide_rate(rsd21(), metadata, "Exact Online")
    assert missing.value.reason == "no exchange rate for RSD on 2024-05-01 in the accounting tool and none on the document (BT-111)"
    assert missing.value.hint == "Add the RSD rate in Exact Online's exchange rates, then sync again."
    # The simulator refuses an entry without a rate as well (it used to hold it at rate 1).
    customer = exact.adapter.ensure_relations([party("c1", "Beograd", "3001")], customer=True)["c1"]
    [answer] = exact.adapter.post_bookings([rsd_entry(customer, None)])
    assert isinstance(answer, BookingRejected) and "no exchange rate for RSD on 2024-05-01" in answer.reason
    assert answer.hint == "Add the currency's rate for the document date in Exact Online's exchange rates, then sync again."
    assert exact.sandbox.sales_entries(DIV) == []


def test_exact_rsd_with_bt111_is_booked_at_the_rate_it_gives(exact):
    metadata = exact.adapter.fetch_metadata()
    choice = decide_rate(rsd21(bt111="27.96"), metadata, "Exact Online")
    assert (choice.rate, choice.source) == (D("0.0085347985"), "document_vat")  # 27.96 / 3,276
    customer = exact.adapter.ensure_relations([party("c1", "Beograd", "3001")], customer=True)["c1"]
    [answer] = exact.adapter.post_bookings([rsd_entry(customer, choice.rate)])
    assert isinstance(answer, BookingResult)
    booked = exact.adapter.read_bookings([answer.entry_id], rsd21().kind)[answer.entry_id]
    assert (booked.company_currency, booked.company_net, booked.company_vat, booked.company_gross) == (
        "EUR", D("133.14"), D("27.96"), D("161.10"))  # the VAT in EUR is BT-111
    assert booked.exchange_rate == choice.rate and (booked.currency, booked.gross) == ("RSD", D("18876.00"))


def test_exact_rsd_booked_at_the_divisions_rate_for_the_document_date(exact):
    exact.sandbox.add_exchange_rate(DIV, "RSD", "0.0084", date(2024, 1, 1))
    exact.sandbox.add_exchange_rate(DIV, "RSD", "0.0085", date(2024, 4, 1))
    exact.sandbox.add_exchange_rate(DIV, "RSD", "0.0086", date(2024, 6, 1))
    metadata = exact.adapter.fetch_metadata()
    choice = decide_rate(rsd21(), metadata, "Exact Online")
    assert (choice.rate, choice.source) == (D("0.0085"), "tool")
    customer = exact.adapter.ensure_relations([party("c1", "Beograd", "3001")], customer=True)["c1"]
    [answer] = exact.adapter.post_bookings([rsd_entry(customer, choice.rate)])
    booked = exact.adapter.read_bookings([answer.entry_id], rsd21().kind)[answer.entry_id]
    assert (booked.company_net, booked.company_vat, booked.company_gross) == (D("132.60"), D("27.85"), D("160.45"))


def test_exact_simulator_applies_its_own_table_when_no_rate_is_sent(exact):
    exact.sandbox.add_exchange_rate(DIV, "RSD", "0.0085", date(2024, 4, 1))
    customer = exact.adapter.ensure_relations([party("c1", "Beograd", "3001")], customer=True)["c1"]
    [answer] = exact.adapter.post_bookings([rsd_entry(customer, None)])
    assert isinstance(answer, BookingResult)
    [stored] = exact.sandbox.sales_entries(DIV)
    assert stored["Rate"] == D("0.0085") and stored["AmountDC"] == D("160.45")


# ------------------------------------------------------------------------------------------ Octopus

from tests.unit.test_octopus_adapter import World as OctopusWorld, customer as octopus_customer, entry as octopus_entry, line as octopus_line  # noqa: E402


@pytest.fixture
def octopus(clock):
    w = OctopusWorld(clock)
    w.sandbox.add_currency(w.dossier, "RSD")  # enabled, no rate in the dossier
    yield w
    w.adapter.close()


def octopus_rsd(relation: str, rate: Decimal | None):
    return octopus_entry("h-rsd", relation, ref="2024-17", currency="RSD", exchange_rate=rate, entry_date=date(2024, 5, 1),
                         due_date=date(2024, 5, 31), lines=(octopus_line(net="15600.00", tax="3276.00"),))


def test_octopus_rsd_without_any_rate_is_skipped_and_never_booked_at_1(octopus):
    metadata = octopus.adapter.fetch_metadata()
    assert metadata.exchange_rates_read and {r.currency for r in metadata.exchange_rates} == {"USD"}
    with pytest.raises(MissingRate) as missing:
        decide_rate(rsd21(), metadata, "Octopus")
    assert missing.value.hint == "Add the RSD rate in Octopus's exchange rates, then sync again."
    [answer] = octopus.adapter.post_bookings([octopus_rsd(octopus_customer(octopus), None)])
    assert isinstance(answer, BookingRejected) and "No exchange rate for RSD" in answer.reason
    assert answer.hint == "Add the currency's exchange rate in Octopus, then sync again."
    assert octopus.sandbox.bookings(octopus.dossier) == []


def test_octopus_rsd_with_bt111_is_booked_at_the_rate_it_gives(octopus):
    choice = decide_rate(rsd21(bt111="27.96"), octopus.adapter.fetch_metadata(), "Octopus")
    [answer] = octopus.adapter.post_bookings([octopus_rsd(octopus_customer(octopus), choice.rate)])
    assert isinstance(answer, BookingResult)
    booked = octopus.adapter.read_bookings([answer.entry_id], rsd21().kind)[answer.entry_id]
    assert (booked.company_currency, booked.company_net, booked.company_vat, booked.company_gross, booked.exchange_rate) == (
        "EUR", D("133.14"), D("27.96"), D("161.10"), D("0.0085347985"))


def test_octopus_rsd_booked_at_the_dossiers_rate(octopus):
    octopus.sandbox.add_currency(octopus.dossier, "RSD", "0.0085")
    choice = decide_rate(rsd21(), octopus.adapter.fetch_metadata(), "Octopus")
    assert (choice.rate, choice.source) == (D("0.0085"), "tool")
    [answer] = octopus.adapter.post_bookings([octopus_rsd(octopus_customer(octopus), choice.rate)])
    booked = octopus.adapter.read_bookings([answer.entry_id], rsd21().kind)[answer.entry_id]
    assert (booked.company_net, booked.company_vat, booked.company_gross) == (D("132.60"), D("27.85"), D("160.45"))


# --------------------------------------------------------------------------------------------- Yuki

from tests.unit.test_yuki_adapter import World as YukiWorld, customer as yuki_customer, entry as yuki_entry, line as yuki_line  # noqa: E402


@pytest.fixture
def yuki(clock):
    w = YukiWorld()
    w.sandbox.add_gl_account(w.admin, "130100", "Trade debtors", "B", subtype="Debtors", vat_applicable=False)
    yield w
    w.adapter.close()


def yuki_rsd(relation: str, rate: Decimal | None):
    return yuki_entry("h-rsd", relation, ref="2024-17", currency="RSD", exchange_rate=rate, entry_date=date(2024, 5, 1),
                      due_date=date(2024, 5, 31), lines=(yuki_line(net="15600.00", tax="3276.00"),))


def test_yuki_rsd_without_any_rate_is_skipped_with_the_reason_and_never_booked_at_1(yuki):
    metadata = yuki.adapter.fetch_metadata()
    assert decide_rate(rsd21(), metadata, "Yuki").rate is None  # no table to read: Yuki applies its own
    [answer] = yuki.adapter.post_bookings([yuki_rsd(yuki_customer(yuki), None)])
    assert isinstance(answer, BookingRejected)
    assert answer.reason.startswith("no exchange rate for RSD on 2024-05-01 in the accounting tool and none on the document (BT-111)")
    assert answer.hint == "Add the RSD rate in Yuki's exchange rates, then sync again."
    assert yuki.sandbox.invoices(yuki.admin) == []


def test_yuki_rsd_with_bt111_and_no_yuki_rate_says_the_rate_cannot_be_passed(yuki):
    # Yuki's invoice import has no rate element (yuki.md §3.6 / §3.7): BT-111's rate can't be sent.
    rate = decide_rate(rsd21(bt111="27.96"), yuki.adapter.fetch_metadata(), "Yuki").rate
    [answer] = yuki.adapter.post_bookings([yuki_rsd(yuki_customer(yuki), rate)])
    assert isinstance(answer, BookingRejected) and "can't be passed" in answer.reason and "0.0085347985" in answer.reason
    assert answer.hint == "Add the RSD rate in Yuki's exchange rates, then sync again."


def test_yuki_rsd_booked_at_yukis_rate_with_its_eur_amounts_read_back(yuki):
    yuki.sandbox.add_exchange_rate(yuki.admin, "RSD", "0.0084", date(2024, 1, 1))
    yuki.sandbox.add_exchange_rate(yuki.admin, "RSD", "0.0085", date(2024, 4, 1))
    [answer] = yuki.adapter.post_bookings([yuki_rsd(yuki_customer(yuki), None)])
    assert isinstance(answer, BookingResult)
    booked = yuki.adapter.read_bookings([answer.entry_id], rsd21().kind)[answer.entry_id]
    assert (booked.currency, booked.gross) == ("RSD", D("18876.00"))
    assert (booked.company_currency, booked.company_net, booked.company_vat, booked.company_gross, booked.exchange_rate) == (
        "EUR", D("132.60"), D("27.85"), D("160.45"), D("0.0085"))


def test_a_tool_that_takes_no_rate_gets_the_documents_rate_flagged():
    meta = metadata(read=False).model_copy(update={"exchange_rate_accepted": False})
    settings = SETTINGS.model_copy(update={"tool": "yuki"})
    entry = build_entry(rsd_invoice(bt111="26.63"), settings, meta, "rel-1")
    assert isinstance(entry, BookingEntry)
    assert entry.warnings == ("Yuki applies its own exchange rate for RSD: the document's rate 0.0085352564 (BT-111) can't be passed,"
                              " so the amounts in EUR follow Yuki's rate",)


def test_yuki_purchase_credit_note_in_usd_reads_its_eur_amounts_in_the_documents_sign(yuki):
    from connector.models import Direction, DocumentKind
    from tests.unit.test_yuki_purchase import supplier

    yuki.sandbox.add_gl_account(yuki.admin, "160100", "Trade creditors", "B", subtype="Creditors", vat_applicable=False)
    yuki.sandbox.add_exchange_rate(yuki.admin, "USD", "0.92")
    credit = yuki_entry("h-cn", supplier(yuki), direction=Direction.INCOMING, kind=DocumentKind.CREDIT_NOTE, ref="CN-9", currency="USD",
                        lines=(yuki_line("700000", net="100.00", tax="21.00"),))
    [answer] = yuki.adapter.post_bookings([credit])
    assert isinstance(answer, BookingResult)
    booked = yuki.adapter.read_bookings([answer.entry_id], DocumentKind.CREDIT_NOTE, Direction.INCOMING)[answer.entry_id]
    assert (booked.gross, booked.company_net, booked.company_vat, booked.company_gross) == (D("121.00"), D("92.00"), D("19.32"), D("111.32"))


def test_exact_long_rate_table_is_kept_short_and_older_documents_get_exacts_own_rate(exact, monkeypatch):
    from datetime import timedelta

    import connector.adapters.exact as exact_module

    monkeypatch.setattr(exact_module, "MAX_RATE_ROWS", 10)
    for n in range(30):  # one rate a month from 2022 on
        exact.sandbox.add_exchange_rate(DIV, "RSD", D("0.0080") + D(n) / 100000, date(2022, 1, 1) + timedelta(days=31 * n))
    metadata = exact.adapter.fetch_metadata()  # the clock's year is 2025: rows from 2023-01-01 on, and the one before
    rsd = sorted(r.start for r in metadata.exchange_rates if r.currency == "RSD")
    assert rsd[0] < date(2023, 1, 1) <= rsd[1] and len(rsd) < 30
    assert metadata.exchange_rates_from == rsd[0]
    assert decide_rate(rsd21(), metadata, "Exact Online").source == "tool"  # 2024-05-01: covered
    old = rsd21().model_copy(update={"issue_date": date(2022, 3, 1)})
    assert decide_rate(old, metadata, "Exact Online").source == "tool_applies"  # before the kept rows: Exact's own
