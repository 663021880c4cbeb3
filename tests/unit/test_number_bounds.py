"""Numbers a document carries: the bounds of ``connector.money``, rounding that never overflows, and the
booking's EN 16931 decimal rules (BR-DEC) checked before any arithmetic."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation, localcontext

import pytest

from connector.booking import build_entry, check_decimals
from connector.models import (
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
from connector.money import (
    AMOUNT,
    EXCHANGE_RATE,
    PERCENT,
    QUANTITY,
    OutOfBounds,
    allocate,
    check_bounds,
    decimal_places,
    round_money,
)

D = Decimal
S21 = VatRate(id="S:21", description="21%", percentage=D(21), category="S")
METADATA = ToolMetadata(
    gl_accounts=(GLAccount(code="700000"),),
    journals=(Journal(code="70", type="sales"), Journal(code="60", type="purchase")),
    vat_codes=(VatCode(code="21", percentage=D(21), usage="both"),),
)
SETTINGS = IntegrationSettings(
    tool="exact",
    start_date=date(2020, 1, 1),
    journals=JournalSettings(outgoing_invoices="70", incoming_invoices="60"),
    vat_codes={"S:21": "21"},
    ledger_accounts={"S:21": "700000"},
    purchase_vat_codes={"S:21": "21"},
    expense_ledger_accounts={"S:21": "700000"},
)


def document(net: str = "100.00", vat: str = "21.00", *, rate: VatRate = S21, line_net: str | None = None, number: str = "F-2025-7", **totals: str) -> Document:
    """A one-line document whose figures are exactly the strings given (nothing rounded)."""
    n, v = D(net), D(vat)
    return Document(
        host_id="h1",
        kind=DocumentKind.INVOICE,
        number=number,
        issue_date=date(2025, 5, 1),
        currency="EUR",
        party=Party(host_id="c1", name="Acme"),
        lines=(DocumentLine(description="Consulting", net_amount=D(line_net or net), vat_rate_id=rate.id),),
        vat_breakdown=(VatSubtotal(vat_rate_id=rate.id, taxable_amount=n, vat_amount=v),),
        vat_rates=(rate,),
        totals=DocumentTotals(net=n, vat=v, gross=D(totals.get("gross", str(n + v))), payable=D(totals.get("payable", str(n + v)))),
    )


# ------------------------------------------------------------------------------------ money bounds


def test_rounding_a_40_digit_amount_does_not_overflow_the_decimal_context() -> None:
    forty = D("1" * 40 + ".555")
    assert round_money(forty) == D("1" * 40 + ".56")
    assert round_money(D("-" + "9" * 30 + ".005")) == D("-" + "9" * 30 + ".01")


def test_allocating_a_total_with_many_decimals_stays_exact() -> None:
    total = D("123456789012345." + "1" * 30)  # 45 digits: more than the default context's 28
    with pytest.raises(InvalidOperation):
        total.quantize(D(1).scaleb(-30))  # what a share to 30 places did in the default context
    shares = allocate(total, [D(1), D(2)], places=30)
    with localcontext() as ctx:
        ctx.prec = 100
        assert shares[0] + shares[1] == total
        assert abs(shares[1] - 2 * shares[0]) <= D(1).scaleb(-29)
    assert all(decimal_places(share) <= 30 for share in shares)


@pytest.mark.parametrize(
    ("value", "bounds", "message"),
    [
        ("12345678901234567890123456789012", PERCENT, "cbc:Percent is 12345678901234567890123456789012: outside 0..100 (a percent)"),
        ("-0.5", PERCENT, "cbc:Percent is -0.5: outside 0..100 (a percent)"),
        ("12.34567", PERCENT, "cbc:Percent is 12.34567: more than 4 decimals (a percent has at most 4)"),
        ("1" * 16, AMOUNT, f"cbc:Percent is {'1' * 16}: more than 15 digits before the decimal point (an amount has at most 15)"),
        ("0", EXCHANGE_RATE, "cbc:Percent is 0: an exchange rate must be above zero"),
        ("1" * 50, QUANTITY, "cbc:Percent is 11111111111111111111…111111 (50 digits): more than 15 digits before the decimal point (a quantity has at most 15)"),
    ],
)
def test_a_number_outside_its_bounds_is_refused_naming_the_field_the_value_and_the_bound(value: str, bounds, message: str) -> None:
    with pytest.raises(OutOfBounds) as refused:
        check_bounds(D(value), bounds, "cbc:Percent")
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    ("value", "bounds"),
    [("100", PERCENT), ("0", PERCENT), ("21.0000000", PERCENT), ("5.5", PERCENT), ("-999999999999999.99", AMOUNT),
     ("0." + "0" * 39 + "1", AMOUNT), ("1E-30", QUANTITY), ("123456789.123456789", EXCHANGE_RATE)],
)
def test_a_number_within_its_bounds_is_returned_as_it_is(value: str, bounds) -> None:
    assert check_bounds(D(value), bounds, "x").as_tuple() == D(value).as_tuple()


def test_decimal_places_count_the_value_not_the_trailing_zeros() -> None:
    assert [decimal_places(D(v)) for v in ("9.4650", "9.4600", "100", "1E+3", "0.000", "1E-40")] == [3, 2, 0, 0, 0, 40]


# ------------------------------------------------------------------------------ booking: BR-DEC first


def test_a_40_decimal_line_amount_is_skipped_naming_br_dec_23_not_the_line_sums() -> None:
    forty = "100." + "0" * 39 + "1"
    skip = build_entry(document(line_net=forty), SETTINGS, METADATA, "rel-1")
    assert isinstance(skip, Skip)
    assert skip.reason == (
        "invoice F-2025-7: the invoice line net amount (BT-131) of line 1 is 100.0000000000000000…000001 (43 digits):"
        " more than 2 decimals (EN 16931 BR-DEC-23 allows 2)"
    )
    assert "don't add up" not in skip.reason
    assert skip.hint == "Round the document's amounts to the cent in the host product, then sync again."


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"net": "100.001", "vat": "21.00", "line_net": "100.001"}, "the invoice line net amount (BT-131) of line 1 is 100.001: more than 2 decimals (EN 16931 BR-DEC-23 allows 2)"),
        ({"vat": "21.004"}, "the VAT category tax amount (BT-117) of VAT breakdown 1 is 21.004: more than 2 decimals (EN 16931 BR-DEC-20 allows 2)"),
        ({"payable": "121.0000001"}, "the amount due for payment (BT-115) is 121.0000001: more than 2 decimals (EN 16931 BR-DEC-18 allows 2)"),
    ],
)
def test_each_amount_with_a_decimal_rule_is_checked_with_its_rule(change: dict, expected: str) -> None:
    skip = build_entry(document(**change), SETTINGS, METADATA, "rel-1")
    assert isinstance(skip, Skip) and skip.reason == f"invoice F-2025-7: {expected}"


def test_allowance_and_incoming_documents_name_their_rule_and_ask_the_supplier() -> None:
    doc = document(net="90.00", vat="18.90", line_net="100.00")
    doc = doc.model_copy(update={
        "direction": Direction.INCOMING,
        "allowance_charges": (DocumentAllowanceCharge(is_charge=False, amount=D("10.000001"), reason="discount", vat_rate_id="S:21"),),
    })
    with pytest.raises(Exception) as stop:
        check_decimals(doc)
    skip = stop.value.skip  # type: ignore[attr-defined]
    assert skip.reason == "incoming invoice F-2025-7: the document level allowance amount (BT-92) of allowance 1 is 10.000001: more than 2 decimals (EN 16931 BR-DEC-01 allows 2)"
    assert skip.hint == "Ask the supplier for a corrected e-invoice with amounts to the cent."


def test_unit_prices_and_quantities_may_have_more_decimals_line_amounts_not() -> None:
    doc = document()
    line = doc.lines[0].model_copy(update={"quantity": D("3.000125"), "unit_price": D("33.3329166666")})
    entry = build_entry(doc.model_copy(update={"lines": (line,)}), SETTINGS, METADATA, "rel-1")
    assert not isinstance(entry, Skip), entry
    three = document(line_net="100.001", net="100.00")  # the totals still say 100.00
    line = three.lines[0].model_copy(update={"quantity": D("3.000125"), "unit_price": D("33.3329166666")})
    skip = build_entry(three.model_copy(update={"lines": (line,)}), SETTINGS, METADATA, "rel-1")
    assert isinstance(skip, Skip) and "(BT-131) of line 1 is 100.001: more than 2 decimals (EN 16931 BR-DEC-23" in skip.reason


def test_a_32_digit_vat_percent_given_to_the_booking_is_skipped_not_raised() -> None:
    """A document built by a client without the input bounds: the VAT check's message rounds taxable x
    rate, which overflowed the 28-digit context (decimal.InvalidOperation ended the whole batch)."""
    poison = VatRate(id="S:21", description="poison", percentage=D("12345678901234567890123456789012"), category="S")
    skip = build_entry(document(rate=poison), SETTINGS, METADATA, "rel-1")
    assert isinstance(skip, Skip)
    assert skip.reason.startswith("invoice F-2025-7: ")


# --------------------------------------------------------------------------------- host product JSON


def invoice_json(*, line_amount: object = "100.00", quantity: object = "2", discounts: list | None = None, rate: object = "0.21", cer: dict | None = None) -> dict:
    """An ``invoices.info`` data object (host-api.md §4.3) with one line at tax rate ``t21``."""
    return {
        "id": "inv-uuid-1",
        "invoice_number": "2025 / 17",
        "invoice_date": "2025-05-01",
        "currency": "EUR",
        "grouped_lines": [{"line_items": [{
            "description": "Consulting", "quantity": quantity, "unit_price": {"amount": "50.00"},
            "tax": {"type": "taxRate", "id": "t21"}, "total": {"tax_exclusive": {"amount": line_amount}},
        }]}],
        "discounts": discounts or [],
        "total": {"tax_exclusive": {"amount": "100.00"}, "tax_inclusive": {"amount": "121.00"},
                  "taxes": [{"rate": rate, "taxable": {"amount": "100.00"}, "tax": {"amount": "21.00"}}]},
        **({"currency_exchange_rate": cer} if cer else {}),
    }


def host_document(data: dict) -> Document:
    from connector.host.mapping import document_from_json, vat_rate_from_json

    rates = {"t21": vat_rate_from_json({"id": "t21", "description": "21%", "rate": D("0.21"), "category": "S"})}
    return document_from_json(DocumentKind.INVOICE, data, tax_rates=rates, party=Party(host_id="c1", name="Acme"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (invoice_json(line_amount=D("1" * 40)), f"invoice 2025 / 17: grouped_lines[0].line_items[0].total.tax_exclusive is {'1' * 40}: more than 15 digits before the decimal point (an amount has at most 15)"),
        (invoice_json(quantity=10**20), "invoice 2025 / 17: grouped_lines[0].line_items[0].quantity is 100000000000000000000: more than 15 digits before the decimal point (a quantity has at most 15)"),
        (invoice_json(discounts=[{"type": "percentage", "value": D("12345678901234567890123456789012"), "description": "x"}]), "invoice 2025 / 17: discounts[0].value is 12345678901234567890123456789012: outside 0..100 (a percent)"),
        (invoice_json(cer={"from": "EUR", "to": "USD", "rate": D("1" * 30)}), f"invoice 2025 / 17: currency_exchange_rate.rate is {'1' * 30}: more than 9 digits before the decimal point (an exchange rate has at most 9)"),
    ],
)
def test_a_host_document_with_a_number_out_of_bounds_is_refused_naming_its_number_and_the_field(data: dict, message: str) -> None:
    from connector.host.mapping import HostDataError

    with pytest.raises(HostDataError) as refused:
        host_document(data)
    assert str(refused.value) == message


def test_a_host_tax_rate_of_40_digits_is_a_host_data_error_not_an_invalid_operation() -> None:
    from connector.host.mapping import HostDataError, vat_rate_from_json

    with pytest.raises(HostDataError, match=r"taxRates.list row 't9': rate \(in percent\) is 10000000000000000000…000000 \(43 digits\): outside 0..100 \(a percent\)$"):
        vat_rate_from_json({"id": "t9", "description": "poison", "rate": 10**40})


def test_a_host_document_reads_15_integer_digits_and_refuses_16() -> None:
    from connector.host.mapping import HostDataError

    doc = host_document(invoice_json(quantity=D("999999999999999.000125")))
    assert (doc.number, doc.lines[0].net_amount, doc.lines[0].quantity) == ("2025 / 17", D("100.00"), D("999999999999999.000125"))
    with pytest.raises(HostDataError, match=r"quantity is 9999999999999999: more than 15 digits"):
        host_document(invoice_json(quantity=D("9999999999999999")))


def test_a_5000_digit_integer_in_the_hosts_answer_refuses_that_document_not_the_whole_answer() -> None:
    """Python refuses to turn more than 4,300 digits into an int: before, the whole answer was 'invalid
    JSON' (the batch failed); now that number is a Decimal the bounds refuse, naming the field."""
    from connector.host.mapping import HostDataError, decode_json, encode_json

    answer = encode_json({"data": invoice_json(quantity=12)}).replace(b'"quantity":12', b'"quantity":' + b"9" * 5000)
    data = decode_json(answer)["data"]
    with pytest.raises(HostDataError, match=r"^invoice 2025 / 17: grouped_lines\[0\]\.line_items\[0\]\.quantity is 99999999999999999999…999999 \(5000 digits\): more than 15 digits"):
        host_document(data)
