"""VAT rules end to end, for each tool and both ways (outgoing through the host product, incoming Peppol
through the host's incoming documents and their UBL): the document's own VAT breakdown per category is
what the booking is checked against (EN 16931 BR-G-01: an export line whose only breakdown is "not
subject to VAT" is skipped), a stated VAT within BR-CO-17's tolerance is booked as stated (308.63 on
25 % of 1234.71, read back from the tool), one further off is skipped naming BR-CO-17 and the figures,
a financial discount's lower taxable amount is named with both figures (BR-S-08), and a line whose
quantity and amount differ in sign is booked with a warning.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connector.demo import DemoEnvironment, load_folder, read_originals
from connector.models import Direction

TOOLS = ["exact", "octopus", "yuki"]

PARTIES = """
  <cac:AccountingSupplierParty><cac:Party>
    <cbc:EndpointID schemeID="0208">0123456749</cbc:EndpointID>
    <cac:PostalAddress><cbc:StreetName>Main street 1</cbc:StreetName><cbc:CityName>Gent</cbc:CityName>
      <cbc:PostalZone>9000</cbc:PostalZone><cac:Country><cbc:IdentificationCode>BE</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
    <cac:PartyTaxScheme><cbc:CompanyID>BE0123456749</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
    <cac:PartyLegalEntity><cbc:RegistrationName>Seller NV</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cbc:EndpointID schemeID="0208">0987654321</cbc:EndpointID>
    <cac:PostalAddress><cbc:StreetName>Kerkstraat 5</cbc:StreetName><cbc:CityName>Antwerpen</cbc:CityName>
      <cbc:PostalZone>2000</cbc:PostalZone><cac:Country><cbc:IdentificationCode>BE</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
    <cac:PartyTaxScheme><cbc:CompanyID>BE0987654321</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
    <cac:PartyLegalEntity><cbc:RegistrationName>Buyer BV</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>"""


def _category(code: str, percent: str, tag: str) -> str:
    pct = "" if code == "O" else f"<cbc:Percent>{percent}</cbc:Percent>"
    reason = "<cbc:TaxExemptionReasonCode>VATEX-EU-O</cbc:TaxExemptionReasonCode>" if code == "O" and tag == "cac:TaxCategory" else ""
    return f"<{tag}><cbc:ID>{code}</cbc:ID>{pct}{reason}<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></{tag}>"


def invoice(number: str, lines: list[tuple[str, str, str, str, str]], breakdown: list[tuple[str, str, str, str]], net: str, vat: str) -> bytes:
    """A Peppol BIS 3 invoice. ``lines``: (quantity, price, line amount, category, percent);
    ``breakdown``: (taxable, VAT, category, percent) per cac:TaxSubtotal, as the seller wrote it."""
    gross = str(Decimal(net) + Decimal(vat))
    subtotals = "".join(
        f'<cac:TaxSubtotal><cbc:TaxableAmount currencyID="EUR">{t}</cbc:TaxableAmount><cbc:TaxAmount currencyID="EUR">{v}</cbc:TaxAmount>'
        f"{_category(c, p, 'cac:TaxCategory')}</cac:TaxSubtotal>"
        for t, v, c, p in breakdown
    )
    items = "".join(
        f'<cac:InvoiceLine><cbc:ID>{i}</cbc:ID><cbc:InvoicedQuantity unitCode="C62">{q}</cbc:InvoicedQuantity>'
        f'<cbc:LineExtensionAmount currencyID="EUR">{a}</cbc:LineExtensionAmount><cac:Item><cbc:Name>Item {i}</cbc:Name>'
        f"{_category(c, p, 'cac:ClassifiedTaxCategory')}</cac:Item>"
        f'<cac:Price><cbc:PriceAmount currencyID="EUR">{price}</cbc:PriceAmount></cac:Price></cac:InvoiceLine>'
        for i, (q, price, a, c, p) in enumerate(lines, start=1)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>
  <cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>
  <cbc:ID>{number}</cbc:ID><cbc:IssueDate>2025-03-03</cbc:IssueDate><cbc:DueDate>2025-04-02</cbc:DueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode><cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cbc:BuyerReference>PO-1</cbc:BuyerReference>{PARTIES}
  <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">{vat}</cbc:TaxAmount>{subtotals}</cac:TaxTotal>
  <cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="EUR">{net}</cbc:LineExtensionAmount>
    <cbc:TaxExclusiveAmount currencyID="EUR">{net}</cbc:TaxExclusiveAmount><cbc:TaxInclusiveAmount currencyID="EUR">{gross}</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">{gross}</cbc:PayableAmount></cac:LegalMonetaryTotal>{items}
</Invoice>
""".encode()


FILES = {
    # EN 16931 BR-G-01 / BR-O-12: an export line, but the only VAT breakdown is "not subject to VAT".
    "export-not-subject.xml": invoice("EXP-1", [("1", "500.00", "500.00", "G", "0")], [("500.00", "0.00", "O", "0")], "500.00", "0.00"),
    # EHF forward billing: 25 % of 1234.71 is 308.68, the invoice states 308.63 (valid: BR-CO-17 < 1 unit).
    "forward-billing.xml": invoice("EHF-1", [("1", "1234.71", "1234.71", "S", "25")], [("1234.71", "308.63", "S", "25")], "1234.71", "308.63"),
    # 1.18 from 308.68: beyond BR-CO-17's tolerance.
    "vat-off.xml": invoice("EHF-2", [("1", "1234.71", "1234.71", "S", "25")], [("1234.71", "307.50", "S", "25")], "1234.71", "307.50"),
    # Belgian financial discount written into the breakdown: 21 % taxable 392.00 while the line is 400.00.
    "financial-discount.xml": invoice("BE-FD-1", [("1", "400.00", "400.00", "S", "21")], [("392.00", "82.32", "S", "21")], "400.00", "82.32"),
    # A return: negative quantity but a positive line amount.
    "sign.xml": invoice("SIGN-1", [("-2", "50.00", "100.00", "S", "21")], [("100.00", "21.00", "S", "21")], "100.00", "21.00"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vat-rules")
    for name, data in FILES.items():
        (path / name).write_bytes(data)
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("direction", [Direction.OUTGOING, Direction.INCOMING], ids=["outgoing", "incoming"])
@pytest.mark.parametrize("tool", TOOLS)
def test_vat_breakdown_category_tolerance_and_reasons_in_every_tool(folder, tool, direction):
    docs = load_folder(folder, direction)
    with DemoEnvironment(docs, tools=(tool,), originals=read_originals(folder)) as env:
        run = env.sync(env.entities[0])
    by_source = {d.source: d for d in run.documents}
    kind = "incoming invoice" if direction is Direction.INCOMING else "invoice"

    export = by_source["export-not-subject.xml"]
    assert export.status == "skipped", (tool, export)
    assert export.reason.startswith(f"{kind} EXP-1: VAT 0% category G (export outside the EU) is used on lines (500.00)")
    assert "missing from the VAT breakdown (EN 16931 BR-G-01)" in export.reason and "BR-O-12" in export.reason

    forward = by_source["forward-billing.xml"]
    assert forward.status == "synced", (tool, forward)
    assert (Decimal(forward.net), Decimal(forward.vat), Decimal(forward.gross)) == (Decimal("1234.71"), Decimal("308.63"), Decimal("1543.34"))

    off = by_source["vat-off.xml"]
    assert off.status == "skipped", (tool, off)
    assert off.reason == (
        f"{kind} EHF-2: the VAT amount of VAT 25% is 307.50, 25% of 1234.71 is 308.68: 1.18 apart, EN 16931 BR-CO-17"
        " accepts less than 1 (BR-S-09)"
    )

    discount = by_source["financial-discount.xml"]
    assert discount.status == "skipped", (tool, discount)
    assert discount.reason == (
        f"{kind} BE-FD-1: the taxable amount of VAT 21% is 392.00, its lines, allowances and charges add up to 400.00 (EN 16931 BR-S-08)"
    )

    sign = by_source["sign.xml"]
    assert sign.status == "synced", (tool, sign)
    assert sign.flag and f"{kind} SIGN-1: line 1" in sign.flag and "has quantity -2 but line amount 100.00" in sign.flag
